"""Monitoring on GCP: per model the scheduled drift job, Cloud Monitoring metrics, a dashboard, alert
policies to the spec's notification channels, and retraining started by the drift alert.

The drift job is a Cloud Run job (`python -m pipelines monitor`) that Cloud Scheduler runs on the spec's
schedule; it reads the model's inference window from GCS and writes its metrics through the
`cloud-monitoring:<project>/<namespace>` sink. The drift alert watches the monitor's verdict with the
condition `pipelines.adapters.gcp.drift_alert_condition` defines; missing data keeps the incident as it is,
so one drift episode is one incident. Retraining is alert-driven (as on AWS) rather than started by the
monitor, which runs every few minutes while drift lasts: the incident's notification goes to a Pub/Sub
topic, and an Eventarc trigger starts the model's training workflow from it, once per episode.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_gcp import cloudrunv2, cloudscheduler, eventarc, monitoring, projects, pubsub, secretmanager

from infra.components import Monitoring
from infra.secrets import SecretValues
from infra.spec import AlertSpec, ModelSpec, PlatformSpec
from infra.targets.gcp import dashboards
from infra.targets.gcp.foundation import Foundation, after
from infra.targets.gcp.names import gcp_name
from infra.targets.gcp.registry import GcpModelRegistry
from infra.targets.gcp.rules import scheduler_cron
from infra.targets.gcp.training import JOB_RUNNER, WORKFLOW_INVOKER, GcpTrainingCluster, workflow_condition
from infra.targets.objectstore import PREFIXES
from pipelines.adapters.gcp import SCOPE, data_quality_alert_condition, drift_alert_condition, quality_alert_condition

MONITOR_TIME_LIMIT_SECONDS = 3600
METRIC_WRITER = "roles/monitoring.metricWriter"
PUBLISHER = "roles/pubsub.publisher"
AUTO_CLOSE = "604800s"
PUBSUB_EVENT = "google.cloud.pubsub.topic.v1.messagePublished"

Args = monitoring.AlertPolicyConditionConditionThresholdArgs
Aggregation = monitoring.AlertPolicyConditionConditionThresholdAggregationArgs


def condition_args(condition: dict[str, Any]) -> monitoring.AlertPolicyConditionArgs:
    """An alert condition in the adapter's request shape, as the SDK's typed arguments."""
    threshold = condition["conditionThreshold"]
    return monitoring.AlertPolicyConditionArgs(
        display_name=condition["displayName"],
        condition_threshold=Args(
            filter=threshold["filter"], comparison=threshold["comparison"],
            threshold_value=threshold["thresholdValue"], duration=threshold["duration"],
            evaluation_missing_data=threshold["evaluationMissingData"],
            aggregations=[Aggregation(alignment_period=a["alignmentPeriod"], per_series_aligner=a["perSeriesAligner"],
                                      cross_series_reducer=a["crossSeriesReducer"],
                                      group_by_fields=a["groupByFields"]) for a in threshold["aggregations"]]))


class GcpMonitoring(Monitoring):
    """One model's drift job and schedule, alert policies, notification channels, dashboard and retraining."""

    def __init__(self, name: str, spec: PlatformSpec, model: ModelSpec, base: Foundation,
                 registry: GcpModelRegistry, training: GcpTrainingCluster, secrets: SecretValues,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.spec, self.model, self.base, self.secrets = spec, model, base, secrets
        self.prefix = f"{spec.prefix}-{model.name}"
        job = self._drift_job(registry, training)
        channels = [self._channel(index, alert) for index, alert in enumerate(model.monitoring.alerts)]
        if model.monitoring.retrain_on_drift:
            channels.append(self._retraining(training.models[model.name].workflow))
        ns, registered = dashboards.namespace(spec), model.registered_model
        drift = self._policy("drift", f"{registered}: drift warrants retraining",
                             [drift_alert_condition(ns, registered)], channels)
        quality = [self._policy(f"quality-{metric}", f"{registered}: {metric} out of bounds",
                                [quality_alert_condition(ns, registered, metric, bound)],
                                channels[:len(model.monitoring.alerts)])
                   for metric, bound in sorted(model.monitoring.min_quality.items())]
        quality.append(self._policy("data-quality", f"{registered}: data-quality problems",
                                    [data_quality_alert_condition(ns, registered)],
                                    channels[:len(model.monitoring.alerts)]))
        board = monitoring.Dashboard(f"{self.prefix}-monitoring", project=base.project, opts=self.child,
                                     dashboard_json=dashboards.dashboard_json(spec, [model], model.name))
        self.dashboard_url = board.id.apply(lambda i: dashboards.dashboard_url(base.project, i))
        self.done(drift_job=job.name, alert_policies=[p.name for p in (drift, *quality)])

    def _drift_job(self, registry: GcpModelRegistry, training: GcpTrainingCluster) -> cloudrunv2.Job:
        spec, model, base = self.spec, self.model, self.base
        account = f"monitor-{model.name}"
        registry.bucket.grant(f"{self.prefix}-monitor", base.member(account), self.child,
                              read=[PREFIXES["packages"], f"{PREFIXES['configs']}/{model.name}",
                                    f"{PREFIXES['inference']}/{model.name}", PREFIXES["data"]],
                              write=[f"{PREFIXES['reports']}/{model.name}", PREFIXES["mlflow"]])
        projects.IAMMember(f"{self.prefix}-monitor-metrics", project=base.project, role=METRIC_WRITER,
                           member=base.member(account), opts=self.child)
        workload = training.workload(model, account, training.models[model.name].config_uri, read_only=True)
        job = training.job(model, "monitor", workload, ["monitor", "--reason", "schedule"],
                           MONITOR_TIME_LIMIT_SECONDS)
        runner = cloudrunv2.JobIamMember(f"{self.prefix}-monitor-runner", name=job.name, location=base.region,
                                         project=base.project, role=JOB_RUNNER, member=base.member("scheduler"),
                                         opts=self.child)
        cloudscheduler.Job(
            f"{self.prefix}-monitor", name=gcp_name(spec.prefix, "monitor", model.name, kind="scheduler"),
            region=base.region, project=base.project, description=f"drift monitoring of {model.registered_model}",
            schedule=scheduler_cron(model.monitoring.schedule), time_zone="Etc/UTC", attempt_deadline="180s",
            retry_config=cloudscheduler.JobRetryConfigArgs(retry_count=1),
            http_target=cloudscheduler.JobHttpTargetArgs(
                uri=job.name.apply(lambda n: f"https://run.googleapis.com/v2/projects/{base.project}/locations/"
                                             f"{base.region}/jobs/{n}:run"),
                http_method="POST", oauth_token=cloudscheduler.JobHttpTargetOauthTokenArgs(
                    service_account_email=base.accounts["scheduler"].email, scope=SCOPE)),
            opts=after(self.child, runner))
        return job

    def _channel(self, index: int, alert: AlertSpec) -> pulumi.Output[str]:
        """A notification channel for one of the spec's alerts (a webhook's URL stays a secret)."""
        base = self.base
        if alert.kind == "email":
            kind, labels = "email", {"email_address": alert.address or ""}
        else:
            url = alert.url
            if url.ref is not None:  # a Secret Manager secret holding the URL
                value = pulumi.Output.secret(secretmanager.get_secret_version_output(
                    secret=url.ref, opts=pulumi.InvokeOptions(parent=self)).secret_data)
            else:
                value = self.secrets.value(url)
            kind, labels = "webhook_tokenauth", {"url": value}
        channel = monitoring.NotificationChannel(
            f"{self.prefix}-alert-{index}", type=kind, labels=labels,
            display_name=gcp_name(self.prefix, "alert", str(index), kind="display"), project=base.project,
            user_labels=base.labels, opts=self.child)
        return channel.name

    def _retraining(self, workflow: str) -> pulumi.Output[str]:
        """Drift incident -> Pub/Sub -> Eventarc -> the training workflow; returns the Pub/Sub channel."""
        model, base = self.model, self.base
        topic = pubsub.Topic(f"{self.prefix}-retrain", name=gcp_name(self.prefix, "retrain", kind="topic"),
                             project=base.project, kms_key_name=base.key.id, labels=base.labels,
                             opts=after(self.child, *base.key_grants))
        publisher = pubsub.TopicIAMMember(
            f"{self.prefix}-retrain-publisher", topic=topic.id, role=PUBLISHER, project=base.project,
            member=base.agents["monitoring.googleapis.com"].apply(lambda e: f"serviceAccount:{e}"), opts=self.child)
        account = f"trigger-{model.name}"
        invoker = projects.IAMMember(
            f"{self.prefix}-retrain-invoker", project=base.project, role=WORKFLOW_INVOKER,
            member=base.member(account), opts=self.child,
            condition=projects.IAMMemberConditionArgs(title="shipyard retraining",
                                                      expression=workflow_condition([workflow])))
        eventarc.Trigger(
            f"{self.prefix}-retrain", name=gcp_name(self.prefix, "retrain", kind="trigger"), location=base.region,
            project=base.project, service_account=base.accounts[account].email, labels=base.labels,
            matching_criterias=[eventarc.TriggerMatchingCriteriaArgs(attribute="type", value=PUBSUB_EVENT)],
            transport=eventarc.TriggerTransportArgs(pubsub=eventarc.TriggerTransportPubsubArgs(topic=topic.id)),
            destination=eventarc.TriggerDestinationArgs(workflow=workflow), opts=after(self.child, invoker))
        channel = monitoring.NotificationChannel(
            f"{self.prefix}-retrain", type="pubsub", labels={"topic": topic.id}, project=base.project,
            display_name=gcp_name(self.prefix, "retrain", kind="display"), user_labels=base.labels,
            opts=after(self.child, publisher))
        return channel.name

    def _policy(self, kind: str, title: str, conditions: list[dict[str, Any]],
                channels: list[pulumi.Output[str]]) -> monitoring.AlertPolicy:
        base, model = self.base, self.model
        return monitoring.AlertPolicy(
            f"{self.prefix}-{kind}", display_name=gcp_name(title, kind="display"), combiner="OR",
            conditions=[condition_args(c) for c in conditions], notification_channels=channels,
            severity="WARNING", project=base.project, user_labels=base.labels,
            alert_strategy=monitoring.AlertPolicyAlertStrategyArgs(auto_close=AUTO_CLOSE),
            documentation=monitoring.AlertPolicyDocumentationArgs(mime_type="text/markdown", content=(
                f"The drift monitor of **{model.registered_model}** ({self.spec.prefix}) reports this. "
                "Its reports are under "
                f"`{PREFIXES['reports']}/{model.name}` in the platform bucket.")),
            opts=self.child)
