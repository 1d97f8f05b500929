"""A model's monitoring on Kubernetes: the drift CronJob, the file server exposing its metrics to
Prometheus, and (with the Prometheus operator) a ServiceMonitor and a PrometheusRule.

`python -m pipelines monitor` reads the inference log from the shared data volume, writes its reports
there and its metrics in Prometheus text format to `metrics/<model>/metrics.txt`; a tiny `http.server`
(from the same image) serves that file, replaced atomically by each run. When retraining on drift is
allowed, the monitor's own ServiceAccount may start a Job from the model's training CronJob, nothing more.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_kubernetes.admissionregistration.v1 import (
    MatchConditionArgs,
    MatchResourcesArgs,
    NamedRuleWithOperationsArgs,
    ParamKindArgs,
    ParamRefArgs,
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
    ValidatingAdmissionPolicyBindingSpecArgs,
    ValidatingAdmissionPolicySpecArgs,
    ValidationArgs,
)
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.apps.v1 import Deployment, DeploymentSpecArgs
from pulumi_kubernetes.core.v1 import ContainerArgs, ContainerPortArgs, PodTemplateSpecArgs
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.rbac.v1 import Role, RoleBinding, RoleRefArgs, SubjectArgs

from infra.components import Monitoring
from infra.spec import ModelSpec, PlatformSpec
from infra.targets.kubernetes import layout, network, rbac
from infra.targets.kubernetes.context import (
    Context,
    cron_job,
    job_spec,
    network_policy,
    service,
    service_account,
)
from infra.targets.kubernetes.labels import Workload
from infra.targets.kubernetes.registry import KubernetesRegistry
from infra.targets.kubernetes.serving import scrape_annotations
from infra.targets.kubernetes.sizes import TINY, resources
from infra.targets.kubernetes.training import KubernetesTraining
from infra.targets.kubernetes.workload import (
    claim_volume,
    container_security,
    data_pod_affinity,
    mount,
    pipelines_pod,
    pod_spec,
    tcp_probe,
)
from pipelines.catalog import DATA_QUALITY_METRIC, higher_is_better, worse_operator

#: The drift run's size class: it reads a window of the inference log and profiles it.
MONITOR_SIZE = "small"
#: A drift run's deadline, and how long its finished Jobs are kept.
MONITOR_DEADLINE_SECONDS = 30 * 60
MONITOR_JOB_TTL_SECONDS = 24 * 3600
PROMETHEUS_API = "monitoring.coreos.com/v1"


def retrains(model: ModelSpec) -> bool:
    """Whether the monitor may start training (and so needs API access)."""
    return model.monitoring.retrain_on_drift


def dashboard_url(spec: PlatformSpec, model: ModelSpec, namespace: str) -> str:
    """Where to look at a model: the cluster's dashboard when the spec names one, else its MLflow registry page."""
    tracking = layout.tracking_uri(namespace, spec.k8s.cluster_domain)
    return spec.k8s.dashboard_url or f"{tracking}/#/models/{model.registered_model}"


def alert_rules(model: ModelSpec, namespace: str) -> list[dict[str, Any]]:
    """PrometheusRule alerts for one model, over the metrics `pipelines monitor` and `pipelines serve` export.

    Drift metrics carry `model` (the registered model's name); serving metrics are told apart by the
    ServiceMonitor's `namespace` / `service` labels.
    """
    name = model.registered_model
    drift = f'model="{name}"'
    serving = f'namespace="{namespace}",service="{layout.serving_name(model.name)}"'
    labels = {"model": name, "namespace": namespace}

    def alert(alert: str, expr: str, severity: str, summary: str, duration: str = "0m") -> dict[str, Any]:
        return {"alert": alert, "expr": expr, "for": duration, "labels": {**labels, "severity": severity},
                "annotations": {"summary": summary}}

    rules = [
        alert("ShipyardCovariateShift", f"max(shipyard_drift_covariate{{{drift}}}) > 0", "warning",
              f"Input features of {name} have drifted ({{{{ $value }}}})."),
        alert("ShipyardPriorShift", f"max(shipyard_drift_prior{{{drift}}}) > 0", "warning",
              f"The prediction or label distribution of {name} has shifted."),
        alert("ShipyardMajorDrift", f"max(shipyard_drift_severity{{{drift}}}) >= 2", "critical",
              f"{name} drifted severely; retraining is warranted."),
        alert("ShipyardDataQuality", f"max({DATA_QUALITY_METRIC}{{{drift}}}) > 0", "warning",
              f"{name}'s traffic has data-quality problems in {{{{ $value }}}} columns (see the drift report); "
              "not drift, no retraining."),
        alert("ShipyardDriftMetricsMissing", f"absent(shipyard_drift_window_rows{{{drift}}})", "warning",
              f"No drift metrics for {name}: the drift CronJob has not run or its metrics are not scraped.", "3h"),
        alert("ShipyardServingErrors",
              f'sum(rate(shipyard_serving_requests_total{{{serving},status=~"5.."}}[5m])) '
              f"/ sum(rate(shipyard_serving_requests_total{{{serving}}}[5m])) > 0.05", "critical",
              f"More than 5% of {name}'s requests fail.", "5m"),
    ]
    rules += [alert(f"ShipyardQualityDegraded{metric.title().replace('_', '')}", quality_expr(drift, metric, bound),
                    "critical", f"{name}'s {metric} is worse than {bound}.")
              for metric, bound in sorted(model.monitoring.min_quality.items())]
    return rules


def quality_expr(selector: str, metric: str, bound: float) -> str:
    """PromQL true exactly when the model's `metric` is worse than `bound` (direction from `pipelines.catalog`).

    Over several series (versions, pods) the worst one counts: the lowest of a higher-is-better metric, the
    highest of a lower-is-better one.
    """
    worst = "min" if higher_is_better(metric) else "max"
    return f'{worst}(shipyard_model_quality{{{selector},metric="{metric}"}}) {worse_operator(metric)} {bound}'


#: The label every namespace carries with its own name (set by the API server).
NAMESPACE_LABEL = "kubernetes.io/metadata.name"


class KubernetesMonitoring(Monitoring):
    """One model's drift monitoring."""

    def __init__(self, name: str, ctx: Context, model: ModelSpec, registry: KubernetesRegistry,
                 training: KubernetesTraining, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        spec = ctx.spec
        key = model.name
        monitor = ctx.workload(layout.APP_MONITOR, "monitoring", key, runs_pipelines=True)
        cronjob = layout.drift_cronjob(key)
        account = service_account(ctx, f"{key}-drift", cronjob, monitor, self.child, automount_token=retrains(model))
        account_name = account.metadata.apply(lambda m: m.name)
        if retrains(model):
            self._retrain_role(ctx, key, monitor, account_name)

        pod = pipelines_pod(training.runtimes[key], "monitor", service_account=account_name,
                            container_resources=resources(MONITOR_SIZE), data_volume=ctx.data_claim,
                            automount_token=retrains(model), restart_policy="Never",
                            pod_affinity=data_pod_affinity(spec), placement=ctx.placement("monitoring"))
        job = job_spec(ctx, monitor, pod, backoff_limit=1, deadline_seconds=MONITOR_DEADLINE_SECONDS,
                       ttl_seconds=MONITOR_JOB_TTL_SECONDS)
        cron_job(ctx, f"{key}-drift", cronjob, monitor, model.monitoring.schedule, job, self.child,
                 starting_deadline_seconds=600, successful_history=1)
        policy = network.monitor_policy(cronjob, monitor.selector, network.pods(registry.workload.selector),
                                        retrains(model))
        network_policy(ctx, f"{key}-drift-network", policy, monitor, self.child)
        self._metrics_server(ctx, key)
        if spec.k8s.prometheus_operator:
            self._prometheus_objects(ctx, model)

        self.dashboard_url = pulumi.Output.from_input(dashboard_url(spec, model, ctx.namespace_name))
        self.done()

    def _retrain_role(self, ctx: Context, key: str, monitor: Workload, account: pulumi.Output[str]) -> None:
        """A Role allowing exactly what starting the training Job takes, bound to the monitor's account."""
        name = layout.drift_cronjob(key)
        role = Role(f"{key}-drift", metadata=ctx.meta(name, monitor),
                    rules=rbac.rules(rbac.retrain_permissions(layout.train_cronjob(key))), opts=self.child)
        RoleBinding(f"{key}-drift", metadata=ctx.meta(name, monitor),
                    role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role",
                                         name=role.metadata.apply(lambda m: m.name)),
                    subjects=[SubjectArgs(kind="ServiceAccount", name=account, namespace=ctx.namespace)],
                    opts=self.child)
        self._retrain_admission(ctx, key, monitor)

    def _retrain_admission(self, ctx: Context, key: str, monitor: Workload) -> None:
        """A cluster-scoped ValidatingAdmissionPolicy (and binding) that pins the monitor's Jobs to the training
        CronJob, its parameter: a missing CronJob refuses them."""
        cronjob = layout.train_cronjob(key)
        admission = rbac.retrain_admission(ctx.namespace_name, layout.drift_cronjob(key), cronjob)
        name = f"{ctx.namespace_name}-{key}-retrain"
        metadata = ObjectMetaArgs(name=name, labels=monitor.labels)
        policy = ValidatingAdmissionPolicy(f"{key}-retrain-admission", metadata=metadata, opts=self.child,
                                           spec=ValidatingAdmissionPolicySpecArgs(
            failure_policy="Fail",
            param_kind=ParamKindArgs(api_version="batch/v1", kind="CronJob"),
            match_constraints=MatchResourcesArgs(
                namespace_selector=LabelSelectorArgs(match_labels={NAMESPACE_LABEL: ctx.namespace_name}),
                resource_rules=[NamedRuleWithOperationsArgs(api_groups=["batch"], api_versions=["v1"],
                                                            operations=["CREATE"], resources=["jobs"])]),
            match_conditions=[MatchConditionArgs(name="from-the-monitor", expression=admission.condition)],
            validations=[ValidationArgs(expression=expression, message=message)
                         for expression, message in admission.checks]))
        ValidatingAdmissionPolicyBinding(f"{key}-retrain-admission", metadata=metadata, opts=self.child,
                                         spec=ValidatingAdmissionPolicyBindingSpecArgs(
            policy_name=policy.metadata.apply(lambda m: m.name), validation_actions=["Deny"],
            param_ref=ParamRefArgs(name=cronjob, namespace=ctx.namespace_name, parameter_not_found_action="Deny")))

    def _metrics_server(self, ctx: Context, key: str) -> None:
        """The file server publishing the drift metrics (read-only on the data volume) and its Service."""
        workload = ctx.workload(layout.APP_METRICS, "monitoring", key)
        name = layout.metrics_name(key)
        account = service_account(ctx, f"{key}-drift-metrics", name, workload, self.child)
        container = ContainerArgs(
            name="metrics",
            image=ctx.image,
            command=["python", "-m", "http.server", str(layout.METRICS_PORT), "--bind", "0.0.0.0",
                     "--directory", layout.metrics_dir(key)],
            ports=[ContainerPortArgs(name="metrics", container_port=layout.METRICS_PORT)],
            resources=resources(TINY),
            security_context=container_security(),
            volume_mounts=[mount("data", layout.DATA_DIR, read_only=True)],
            readiness_probe=tcp_probe("metrics"),
            liveness_probe=tcp_probe("metrics", period=30),
        )
        path = f"/{layout.METRICS_FILE}"
        Deployment(f"{key}-drift-metrics", metadata=ctx.meta(name, workload), spec=DeploymentSpecArgs(
            replicas=1,
            selector=LabelSelectorArgs(match_labels=workload.selector),
            template=PodTemplateSpecArgs(
                metadata=ctx.pod_meta(workload, scrape_annotations(layout.METRICS_PORT, path)),
                spec=pod_spec([container], service_account=account.metadata.apply(lambda m: m.name),
                              volumes=[claim_volume("data", ctx.data_claim, read_only=True)],
                              pod_affinity=data_pod_affinity(ctx.spec), placement=ctx.placement("monitoring"),
                              pull_secret=ctx.pull_secret)),
        ), opts=self.child)
        service(ctx, f"{key}-drift-metrics", name, workload, [("metrics", layout.METRICS_PORT)], self.child)
        network_policy(ctx, f"{key}-drift-metrics-network", network.metrics_policy(name, workload.selector),
                       workload, self.child)

    def _prometheus_objects(self, ctx: Context, model: ModelSpec) -> None:
        """ServiceMonitor (the endpoint's /metrics and the drift metrics file) and PrometheusRule (alerts)."""
        key = model.name
        owner = ctx.workload(layout.APP_MONITOR, "monitoring", key, runs_pipelines=True)
        instance = owner.selector["app.kubernetes.io/instance"]
        CustomResource(f"{key}-service-monitor", api_version=PROMETHEUS_API, kind="ServiceMonitor",
                       metadata=ctx.meta(layout.drift_cronjob(key), owner), spec={
            "selector": {
                "matchLabels": {"app.kubernetes.io/instance": instance},
                "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In",
                                      "values": [layout.APP_SERVING, layout.APP_METRICS]}],
            },
            "namespaceSelector": {"matchNames": [ctx.namespace_name]},
            "endpoints": [
                {"port": "http", "path": "/metrics", "interval": "30s"},
                {"port": "metrics", "path": f"/{layout.METRICS_FILE}", "interval": "60s"},
            ],
        }, opts=self.child)
        CustomResource(f"{key}-alerts", api_version=PROMETHEUS_API, kind="PrometheusRule",
                       metadata=ctx.meta(layout.drift_cronjob(key), owner), spec={
            "groups": [{"name": f"shipyard-{key}", "rules": alert_rules(model, ctx.namespace_name)}],
        }, opts=self.child)
