"""Monitoring on AWS: per model the scheduled drift job, CloudWatch metrics, a dashboard, alarms to an SNS
topic (drift, quality bounds, data quality), and the EventBridge rule that starts retraining when a drift alarm
fires.

The drift job is a one-step SageMaker pipeline (`python -m pipelines monitor`, the same job machinery as
training) started by EventBridge Scheduler on the spec's schedule; pipeline executions get unique names
and keep their history, which a scheduled raw CreateProcessingJob cannot. It reads the model's inference
window from S3 and publishes through the `cloudwatch:<namespace>` sink, with the dimensions Model (and
Version, Feature, ...). The drift alarm watches the monitor's own verdict (`shipyard_retrain_warranted`:
drift of major severity after its multiple-testing control, or quality under its floor), defined once in
`pipelines.adapters.aws.DRIFT_ALARM`; missing data keeps the alarm's state, so one drift episode is one
ALARM transition: one e-mail, one retraining. Quality bounds and data quality (`shipyard_data_quality_problems`
> 0) get their own alarms, which only notify.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_aws import cloudwatch, sagemaker, scheduler, secretsmanager, sns
from pulumi_aws import iam as aws_iam

from infra.components import Monitoring
from infra.secrets import SecretValues
from infra.spec import AlertSpec, ModelSpec, PlatformSpec
from infra.targets.aws import iam, jobs
from infra.targets.aws.foundation import Foundation
from infra.targets.aws.names import aws_name
from infra.targets.aws.registry import AwsModelRegistry, client_statements
from infra.targets.aws.serving import VARIANT, endpoint_name
from infra.targets.aws.sizes import size
from infra.targets.aws.training import (
    AwsTrainingCluster,
    dataset_statements,
    job_context,
    metrics_namespace,
    service_role,
    start_pipeline_role,
)
from infra.targets.objectstore import PREFIXES
from pipelines.adapters.aws import DRIFT_ALARM, MODEL_DIMENSION, VERDICT_METRIC, drift_alarm_request
from pipelines.catalog import DATA_QUALITY_METRIC, higher_is_better, worse_operator

QUALITY_METRIC = "shipyard_model_quality"
ALARM_PERIOD_SECONDS = DRIFT_ALARM["Period"]
MONITOR_TIME_LIMIT_SECONDS = 3600


def dashboard_url(region: str, name: str) -> str:
    """The CloudWatch console URL of a dashboard."""
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards/dashboard/{name}"


def _search(namespace: str, dimensions: list[str], metric: str, model: str, stat: str = "Maximum") -> str:
    keys = ",".join([namespace, *sorted(dimensions)])
    return f"SEARCH('{{{keys}}} MetricName=\"{metric}\" Model=\"{model}\"', '{stat}', {ALARM_PERIOD_SECONDS})"


def _widget(title: str, metrics: list[Any], region: str, x: int, y: int, *, annotations: list[dict[str, Any]] = (),
            stat: str = "Maximum", period: int = ALARM_PERIOD_SECONDS) -> dict[str, Any]:
    props: dict[str, Any] = {"title": title, "region": region, "view": "timeSeries", "stacked": False,
                             "metrics": metrics, "stat": stat, "period": period}
    if annotations:
        props["annotations"] = {"horizontal": list(annotations)}
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": props}


def model_widgets(spec: PlatformSpec, model: ModelSpec, y: int = 0) -> list[dict[str, Any]]:
    """One model's row of widgets: drift verdict, feature and prior PSI, quality, endpoint traffic and latency."""
    region, namespace, name = spec.region or "", metrics_namespace(spec), model.registered_model
    endpoint = endpoint_name(spec, model)
    monitoring = model.monitoring
    sm = ["EndpointName", endpoint, "VariantName", VARIANT]
    return [
        _widget(f"{model.name}: monitor verdict", [
            [namespace, VERDICT_METRIC, MODEL_DIMENSION, name],
            [namespace, "shipyard_drift_covariate", MODEL_DIMENSION, name],
            [namespace, "shipyard_drift_prior", MODEL_DIMENSION, name]], region, 0, y),
        _widget(f"{model.name}: feature PSI", [
            [{"expression": _search(namespace, ["Feature", "Kind", "Model"], "shipyard_drift_feature_psi", name),
              "id": "psi"}]], region, 12, y,
            annotations=[{"label": "covariate threshold", "value": monitoring.covariate_threshold}]),
        _widget(f"{model.name}: prior PSI (predictions, labels)", [
            [{"expression": _search(namespace, ["Distribution", "Model"], "shipyard_drift_prior_psi", name),
              "id": "prior"}]], region, 0, y + 6,
            annotations=[{"label": "prior threshold", "value": monitoring.prior_threshold}]),
        _widget(f"{model.name}: quality", [
            [{"expression": _search(namespace, ["Metric", "Model"], QUALITY_METRIC, name), "id": "quality"}]],
            region, 12, y + 6),
        _widget(f"{model.name}: invocations and errors", [
            ["AWS/SageMaker", "Invocations", *sm], ["AWS/SageMaker", "Invocation5XXErrors", *sm],
            ["AWS/SageMaker", "Invocation4XXErrors", *sm]], region, 0, y + 12, stat="Sum", period=60),
        _widget(f"{model.name}: model latency p99 (microseconds)", [["AWS/SageMaker", "ModelLatency", *sm]],
                region, 12, y + 12, stat="p99", period=60),
    ]


def dashboard_body(spec: PlatformSpec, models: list[ModelSpec]) -> str:
    """A CloudWatch dashboard of the given models, one block of widgets each."""
    widgets = [w for index, model in enumerate(models) for w in model_widgets(spec, model, y=index * 18)]
    return iam.to_json({"widgets": widgets})


#: The CloudWatch comparison operator for each of `pipelines.catalog.worse_operator`'s answers.
_COMPARISON = {"<": "LessThanThreshold", ">": "GreaterThanThreshold"}


def quality_comparison(metric: str) -> str:
    """The alarm comparison for a quality bound: in ALARM exactly when the metric is worse than the bound."""
    return _COMPARISON[worse_operator(metric)]


def quality_statistic(metric: str) -> str:
    """The statistic a quality alarm watches over its period: the worst value the monitor reported."""
    return "Minimum" if higher_is_better(metric) else "Maximum"


def retrain_pattern(alarm_arns: list[str]) -> str:
    """The EventBridge pattern matching these alarms entering ALARM."""
    return iam.to_json({"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                        "resources": sorted(alarm_arns), "detail": {"state": {"value": ["ALARM"]}}})


class AwsMonitoring(Monitoring):
    """One model's drift job, alarms, alert topic, dashboard and alarm-driven retraining."""

    alerts: sns.Topic

    def __init__(self, name: str, spec: PlatformSpec, model: ModelSpec, base: Foundation,
                 registry: AwsModelRegistry, training: AwsTrainingCluster, secrets: SecretValues,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.spec, self.model, self.base, self.secrets = spec, model, base, secrets
        prefix = f"{spec.prefix}-{model.name}"
        self.alerts = sns.Topic(f"{prefix}-alerts", kms_master_key_id=base.key.arn, tags=spec.all_tags,
                                opts=self.child)
        for index, alert in enumerate(model.monitoring.alerts):
            self._subscribe(f"{prefix}-alert-{index}", alert)

        pipeline = self._drift_job(registry, training)
        drift_alarm = self._drift_alarm()
        quality_alarms = [*self._quality_alarms(), self._data_quality_alarm()]
        if model.monitoring.retrain_on_drift:
            self._retrain_rule(drift_alarm, training.pipelines[model.name])

        board = aws_name(prefix, kind="dashboard")
        cloudwatch.Dashboard(f"{prefix}-monitoring", dashboard_name=board,
                             dashboard_body=dashboard_body(spec, [model]), opts=self.child)
        self.dashboard_url = pulumi.Output.from_input(dashboard_url(base.region, board))
        self.done(alerts_topic=self.alerts.arn, drift_pipeline=pipeline.pipeline_name,
                  alarms=[a.name for a in (drift_alarm, *quality_alarms)])

    def _subscribe(self, name: str, alert: AlertSpec) -> None:
        if alert.kind == "email":
            sns.TopicSubscription(name, topic=self.alerts.arn, protocol="email", endpoint=alert.address,
                                  opts=self.child)
            return
        url = alert.url
        if url.ref is not None:  # an existing Secrets Manager secret holding the URL
            endpoint = pulumi.Output.secret(secretsmanager.get_secret_version_output(
                secret_id=url.ref, opts=pulumi.InvokeOptions(parent=self)).secret_string)
        else:
            endpoint = self.secrets.value(url)
        sns.TopicSubscription(name, topic=self.alerts.arn, protocol="https", endpoint=endpoint,
                              endpoint_auto_confirms=False, opts=self.child)

    def _drift_job(self, registry: AwsModelRegistry, training: AwsTrainingCluster) -> sagemaker.Pipeline:
        spec, model, base = self.spec, self.model, self.base
        prefix = f"{spec.prefix}-{model.name}"
        namespace = metrics_namespace(spec)
        role = service_role(f"{prefix}-monitor-job", "sagemaker.amazonaws.com", base.account, spec.all_tags,
                            self.child)
        datasets = dataset_statements(model.pipeline.dataset_uri)

        def build(bucket: str, key: str, repo: str, acct: str, server: str) -> iam.Document:
            return iam.document([
                *iam.s3_access(bucket, read=[PREFIXES["packages"], f"{PREFIXES['configs']}/{model.name}",
                                             f"{PREFIXES['inference']}/{model.name}", PREFIXES["data"]],
                               write=[f"{PREFIXES['reports']}/{model.name}"]),
                *client_statements(server, bucket), *datasets, iam.put_metrics(namespace),
                iam.kms_use(key), *iam.ecr_pull(repo), iam.sagemaker_logs(base.region, acct), iam.vpc_access(),
            ])

        aws_iam.RolePolicy(f"{prefix}-monitor-job", role=role.id, opts=self.child, policy=iam.policy_json(
            build, registry.bucket.arn, base.key.arn, base.repository_arn, base.account, registry.server_arn))
        pipeline_role = service_role(f"{prefix}-monitor-pipeline", "sagemaker.amazonaws.com", base.account,
                                     spec.all_tags, self.child)
        aws_iam.RolePolicy(f"{prefix}-monitor-pipeline", role=pipeline_role.id, opts=self.child,
                           policy=iam.policy_json(lambda acct, job_role, key: iam.document(
                               iam.run_pipeline_jobs(base.region, acct, [job_role], key)),
                               base.account, role.arn, base.key.arn))
        ctx = job_context(base, role.arn, training.package_prefix, training.run_configs[model.name].prefix,
                          registry.bucket.uri(PREFIXES["reports"], model.name).apply(lambda u: f"{u}/"),
                          max_runtime_seconds=MONITOR_TIME_LIMIT_SECONDS, spot=False)
        processing = size(spec.training.size).processing
        pipeline_name = aws_name(spec.prefix, "monitor", model.name)
        pipeline = sagemaker.Pipeline(
            f"{prefix}-monitor", pipeline_name=pipeline_name, pipeline_display_name=pipeline_name,
            pipeline_description=f"drift and quality monitoring of {model.registered_model}",
            pipeline_definition=ctx.apply(lambda c: iam.to_json(jobs.monitoring_pipeline(
                c, processing_instance=processing))),
            role_arn=pipeline_role.arn, tags=spec.all_tags, opts=self.child)
        schedule_role = start_pipeline_role(f"{prefix}-monitor-schedule", "scheduler.amazonaws.com", base,
                                            [pipeline.arn], spec.all_tags, self.child)
        parameter = scheduler.ScheduleTargetSagemakerPipelineParametersPipelineParameterArgs
        scheduler.Schedule(
            f"{prefix}-monitor", name=aws_name(spec.prefix, "monitor", model.name, kind="schedule"),
            description=f"drift monitoring of {model.registered_model}",
            schedule_expression=jobs.aws_cron(model.monitoring.schedule), schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=scheduler.ScheduleTargetArgs(
                arn=pipeline.arn, role_arn=schedule_role.arn,
                retry_policy=scheduler.ScheduleTargetRetryPolicyArgs(maximum_retry_attempts=1),
                sagemaker_pipeline_parameters=scheduler.ScheduleTargetSagemakerPipelineParametersArgs(
                    pipeline_parameters=[parameter(name=jobs.REASON, value="schedule")])),
            opts=self.child)
        return pipeline

    def _alarm_options(self) -> dict[str, Any]:
        return {"alarm_actions": [self.alerts.arn], "ok_actions": [self.alerts.arn], "tags": self.spec.all_tags,
                "opts": self.child}

    def _drift_alarm(self) -> cloudwatch.MetricAlarm:
        """The alarm on the monitor's verdict, from the definition the runtime adapter shares."""
        spec, model = self.spec, self.model
        prefix = f"{spec.prefix}-{model.name}"
        request = drift_alarm_request(aws_name(prefix, "drift", kind="alarm"), namespace=metrics_namespace(spec),
                                      model=model.registered_model)
        return cloudwatch.MetricAlarm(
            f"{prefix}-drift", name=request["AlarmName"], alarm_description=request["AlarmDescription"],
            namespace=request["Namespace"], metric_name=request["MetricName"],
            dimensions={d["Name"]: d["Value"] for d in request["Dimensions"]}, statistic=request["Statistic"],
            period=request["Period"], evaluation_periods=request["EvaluationPeriods"],
            threshold=request["Threshold"], comparison_operator=request["ComparisonOperator"],
            treat_missing_data=request["TreatMissingData"], **self._alarm_options())

    def _quality_alarms(self) -> list[cloudwatch.MetricAlarm]:
        """One alarm per quality bound of the spec (they notify; the verdict alarm decides retraining)."""
        spec, model = self.spec, self.model
        prefix = f"{spec.prefix}-{model.name}"
        return [cloudwatch.MetricAlarm(
            f"{prefix}-quality-{metric}", name=aws_name(prefix, "quality", metric, kind="alarm"),
            alarm_description=f"{model.registered_model}: {metric} crossed {bound}",
            namespace=metrics_namespace(spec), metric_name=QUALITY_METRIC,
            dimensions={MODEL_DIMENSION: model.registered_model, "Metric": metric},
            statistic=quality_statistic(metric),
            period=ALARM_PERIOD_SECONDS, evaluation_periods=1, treat_missing_data="ignore",
            comparison_operator=quality_comparison(metric), threshold=bound,
            **self._alarm_options())
            for metric, bound in sorted(model.monitoring.min_quality.items())]

    def _data_quality_alarm(self) -> cloudwatch.MetricAlarm:
        """Notifies when the monitor finds data-quality problems (never drift; it starts no retraining)."""
        spec, model = self.spec, self.model
        prefix = f"{spec.prefix}-{model.name}"
        return cloudwatch.MetricAlarm(
            f"{prefix}-data-quality", name=aws_name(prefix, "data-quality", kind="alarm"),
            alarm_description=f"{model.registered_model}: data-quality problems in the monitored traffic",
            namespace=metrics_namespace(spec), metric_name=DATA_QUALITY_METRIC,
            dimensions={MODEL_DIMENSION: model.registered_model}, statistic="Maximum",
            period=ALARM_PERIOD_SECONDS, evaluation_periods=1, treat_missing_data="ignore",
            comparison_operator="GreaterThanThreshold", threshold=0.0, **self._alarm_options())

    def _retrain_rule(self, alarm: cloudwatch.MetricAlarm, training_pipeline: sagemaker.Pipeline) -> None:
        spec, model = self.spec, self.model
        prefix = f"{spec.prefix}-{model.name}"
        rule = cloudwatch.EventRule(
            f"{prefix}-retrain", name=aws_name(prefix, "retrain", kind="rule"),
            description=f"retrain {model.registered_model} when its drift alarm fires",
            event_pattern=alarm.arn.apply(lambda arn: retrain_pattern([arn])),
            tags=spec.all_tags, opts=self.child)
        role = start_pipeline_role(f"{prefix}-retrain", "events.amazonaws.com", self.base, [training_pipeline.arn],
                                   spec.all_tags, self.child)
        cloudwatch.EventTarget(
            f"{prefix}-retrain", rule=rule.name, arn=training_pipeline.arn, role_arn=role.arn,
            sagemaker_pipeline_target=cloudwatch.EventTargetSagemakerPipelineTargetArgs(pipeline_parameter_lists=[
                cloudwatch.EventTargetSagemakerPipelineTargetPipelineParameterListArgs(
                    name=jobs.REASON, value="drift-alarm")]),
            retry_policy=cloudwatch.EventTargetRetryPolicyArgs(maximum_retry_attempts=2), opts=self.child)
