"""Monitoring on Azure: per model the scheduled drift job, its metrics in Azure Monitor (custom metrics on
the platform's Application Insights), metric alerts to an action group for the spec's channels, and
retraining started by the monitor itself through the Container Apps jobs API when the spec allows it.

The drift alert watches the monitor's verdict (`shipyard_retrain_warranted`), defined once in
`pipelines.adapters.azure.DRIFT_ALERT`; quality bounds and data-quality problems get their own alerts. The
monitor's identity may publish metrics to Application Insights and start its own model's training job, nothing
else.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import monitor

from infra.components import Monitoring
from infra.secrets import SecretValues
from infra.spec import ModelSpec, PlatformSpec
from infra.targets.azure import iam, layout
from infra.targets.azure.foundation import Foundation
from infra.targets.azure.names import azure_name
from infra.targets.azure.registry import AzureModelRegistry
from infra.targets.azure.sizes import replica
from infra.targets.azure.training import AzureTrainingCluster, container_job
from pipelines.adapters.azure import DRIFT_ALERT, MODEL_DIMENSION, bootstrap_command
from pipelines.catalog import DATA_QUALITY_METRIC, higher_is_better

QUALITY_METRIC = "shipyard_model_quality"
MONITOR_TIME_LIMIT_SECONDS = 3600
CRITERIA = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"


def metrics_url(resource_id: str) -> str:
    """The Azure portal page charting a resource's metrics."""
    return f"https://portal.azure.com/#resource{resource_id}/metrics"


def quality_alarm(metric: str) -> tuple[str, str]:
    """(operator, aggregation) of a quality bound's alert: the minimum below a higher-is-better metric's floor, the
    maximum above a lower-is-better one's (the direction from `pipelines.catalog.METRICS`, the one table)."""
    return ("LessThan", "Minimum") if higher_is_better(metric) else ("GreaterThan", "Maximum")


def criterion(name: str, metric: str, namespace: str, operator: str, threshold: float, aggregation: str,
              dimensions: dict[str, str]) -> monitor.MetricCriteriaArgs:
    """One static-threshold criterion on a custom metric (validated lazily: it exists after the first run)."""
    return monitor.MetricCriteriaArgs(
        criterion_type="StaticThresholdCriterion", name=name, metric_name=metric, metric_namespace=namespace,
        operator=operator, threshold=threshold, time_aggregation=aggregation, skip_metric_validation=True,
        dimensions=[monitor.MetricDimensionArgs(name=key, operator="Include", values=[value])
                    for key, value in dimensions.items()])


class AzureMonitoring(Monitoring):
    """One model's drift job, action group and alerts."""

    def __init__(self, name: str, spec: PlatformSpec, model: ModelSpec, base: Foundation,
                 registry: AzureModelRegistry, training: AzureTrainingCluster, secrets: SecretValues,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.spec, self.model, self.base = spec, model, base
        prefix = f"{spec.prefix}-{model.name}"
        workload = base.workload(f"{model.name}-monitor")
        for container, role in (("packages", "blob_reader"), ("inference", "blob_reader"), ("data", "blob_reader"),
                                ("reports", "blob_contributor"), ("mlflow", "blob_contributor")):
            registry.grant(container, workload, role)
        iam.grant(workload, "metrics_publisher", base.insights.id, "insights", base.subscription, self.child)
        if model.monitoring.retrain_on_drift:
            iam.grant(workload, "start_training", training.jobs[model.name].id, f"job-{model.name}",
                      base.subscription, self.child, definition=training.start_role.id)
        cpu, memory, _ = replica("small", spec.azure_settings.gpu_workload_profile)
        command = pulumi.Output.all(training.package_uri, training.run_configs[model.name].uri).apply(
            lambda v: bootstrap_command(v[0], "monitor", "--config", v[1]))
        job = container_job(
            f"{prefix}-drift", layout.monitor_job(spec, model.name), base, workload, cron=model.monitoring.schedule,
            timeout_seconds=MONITOR_TIME_LIMIT_SECONDS, command=command, cpu=cpu, memory=memory,
            profile="Consumption", account=registry.account_name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*workload.grants,
                                                                 training.run_configs[model.name].upload]))
        group = self._action_group(secrets)
        alerts = [self._drift_alert(group), *self._quality_alerts(group), self._data_quality_alert(group)]
        self.dashboard_url = base.insights.id.apply(metrics_url)
        self.done(drift_job=job.name, action_group=group.name, alerts=[a.name for a in alerts])

    def _action_group(self, secrets: SecretValues) -> monitor.ActionGroup:
        spec, model, base = self.spec, self.model, self.base
        emails = [monitor.MicrosoftCommonEmailReceiverArgs(name=f"email-{i}", email_address=alert.address,
                                                           use_common_alert_schema=True)
                  for i, alert in enumerate(model.monitoring.alerts) if alert.kind == "email"]
        hooks = [monitor.WebhookReceiverArgs(name=f"webhook-{i}", service_uri=secrets.value(alert.url),
                                             use_common_alert_schema=True)
                 for i, alert in enumerate(model.monitoring.alerts) if alert.kind == "webhook"]
        return monitor.ActionGroup(
            f"{spec.prefix}-{model.name}-alerts", action_group_name=azure_name(spec.prefix, model.name, "alerts",
                                                                               kind="alert"),
            group_short_name=layout.action_group_short(spec, model.name), resource_group_name=base.group_name,
            location="global", enabled=True, email_receivers=emails or None, webhook_receivers=hooks or None,
            tags=base.tags, opts=self.child)

    def _alert(self, key: str, description: str, criteria: monitor.MetricCriteriaArgs, group: monitor.ActionGroup,
               **settings: object) -> monitor.MetricAlert:
        spec, model, base = self.spec, self.model, self.base
        return monitor.MetricAlert(
            f"{spec.prefix}-{model.name}-{key}", rule_name=azure_name(spec.prefix, model.name, key, kind="alert"),
            resource_group_name=base.group_name, location="global", description=description, enabled=True,
            scopes=[base.insights.id], tags=base.tags, opts=self.child,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(odata_type=CRITERIA,
                                                                                 all_of=[criteria]),
            actions=[monitor.MetricAlertActionArgs(action_group_id=group.id)], **settings)

    def _drift_alert(self, group: monitor.ActionGroup) -> monitor.MetricAlert:
        """The alert on the monitor's verdict, from the definition the runtime adapter shares."""
        model = self.model
        return self._alert(
            "drift", f"{model.registered_model}: the monitor found drift (or quality loss) that warrants retraining",
            criterion("verdict", DRIFT_ALERT["metric_name"], self.base.metric_namespace, DRIFT_ALERT["operator"],
                      DRIFT_ALERT["threshold"], DRIFT_ALERT["time_aggregation"],
                      {MODEL_DIMENSION: model.registered_model}),
            group, severity=DRIFT_ALERT["severity"], window_size=DRIFT_ALERT["window_size"],
            evaluation_frequency=DRIFT_ALERT["evaluation_frequency"], auto_mitigate=DRIFT_ALERT["auto_mitigate"])

    def _quality_alerts(self, group: monitor.ActionGroup) -> list[monitor.MetricAlert]:
        """One alert per quality bound of the spec (they notify; the verdict decides retraining)."""
        return [self._quality_alert(group, metric, bound)
                for metric, bound in sorted(self.model.monitoring.min_quality.items())]

    def _data_quality_alert(self, group: monitor.ActionGroup) -> monitor.MetricAlert:
        """Notifies when the monitor finds data-quality problems (never drift; the monitor does not retrain on them)."""
        model = self.model
        return self._alert(
            "data-quality", f"{model.registered_model}: data-quality problems in the monitored traffic",
            criterion("data-quality", DATA_QUALITY_METRIC, self.base.metric_namespace, "GreaterThan", 0.0, "Maximum",
                      {MODEL_DIMENSION: model.registered_model}),
            group, severity=3, window_size="PT1H", evaluation_frequency="PT15M", auto_mitigate=True)

    def _quality_alert(self, group: monitor.ActionGroup, metric: str, bound: float) -> monitor.MetricAlert:
        model = self.model
        operator, aggregation = quality_alarm(metric)
        return self._alert(
            f"quality-{metric}", f"{model.registered_model}: {metric} crossed {bound}",
            criterion(metric, QUALITY_METRIC, self.base.metric_namespace, operator, bound, aggregation,
                      {MODEL_DIMENSION: model.registered_model, "Metric": metric}),
            group, severity=3, window_size="PT1H", evaluation_frequency="PT15M", auto_mitigate=True)


