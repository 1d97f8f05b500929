"""The Kubernetes target: the whole platform in one namespace of an existing cluster.

`build` declares the namespace-wide objects under the Platform component (namespace, default-deny and DNS
NetworkPolicies, the shared data volume), then the four components: `KubernetesRegistry` (MLflow +
PostgreSQL), `KubernetesTraining` (the shipped wheel, run configurations, training CronJobs and initial
Jobs), and per model `KubernetesServing` and `KubernetesMonitoring`. Modules:

- `sizes`: size class -> requests / limits (the one table to edit for a new size);
- `layout`: names, ports, paths; `labels`: `app.kubernetes.io/*`; `network`: the allowed flows; `rbac`: the
  monitor's only permissions; `workload`: security contexts and the shared "install the wheel, then run" pod.
"""

from __future__ import annotations

import re

import pulumi

from infra.image import ImagePlan
from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets.base import TargetResources
from infra.targets.kubernetes import layout
from infra.targets.kubernetes.monitoring import KubernetesMonitoring
from infra.targets.kubernetes.platform import declare_platform
from infra.targets.kubernetes.registry import KubernetesRegistry, uses_s3
from infra.targets.kubernetes.serving import PUBLIC_INGRESS_CLASSES, KubernetesServing
from infra.targets.kubernetes.training import KubernetesTraining

#: A Secret's name: a DNS subdomain.
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def check_supported(spec: PlatformSpec) -> None:
    """Refuse, before declaring anything, what this target cannot realize (ValueError naming the key)."""
    for i, model in enumerate(spec.models):
        if model.serving.auth == "iam":
            raise ValueError(f"models[{i}].serving.auth: 'iam' is not available on Kubernetes; use 'api_key'")
        if model.serving.public:
            check_public(spec, f"models[{i}].serving.public", model.serving.auth)
    uses_s3(spec)
    check_image(spec)


def check_image(spec: PlatformSpec) -> None:
    """Refuse a build with nowhere to push it, and a pull Secret reference that is not a Secret's name."""
    if spec.runtime_image is None and not spec.k8s.image_repository:
        raise ValueError("kubernetes.image_repository: is required to push the runtime image the program builds "
                         "(or pin runtime_image to 'repository@sha256:<64 hex>')")
    credentials = spec.k8s.image_pull_secret
    if credentials is not None and credentials.ref is not None and not _SECRET_NAME.match(credentials.ref):
        raise ValueError(f"kubernetes.image_pull_secret: ref {credentials.ref!r} must name an existing "
                         "kubernetes.io/dockerconfigjson Secret of the namespace")


def check_public(spec: PlatformSpec, key: str, auth: str) -> None:
    """Refuse a public endpoint that would not be what the spec says: one on an ingress class whose prefix
    rewrite and source ranges this target does not configure, or one open to anyone without authentication."""
    ingress_class = spec.k8s.ingress_class
    if ingress_class not in PUBLIC_INGRESS_CLASSES:
        raise ValueError(
            f"{key}: needs kubernetes.ingress_class {' or '.join(map(repr, PUBLIC_INGRESS_CLASSES))} "
            f"(got {ingress_class!r}); only there does this target strip the /<model> prefix and apply "
            "networking.allowed_cidrs")
    if auth == "none" and not spec.networking.allowed_cidrs:
        raise ValueError(
            f"{key}: an endpoint with serving.auth 'none' and no networking.allowed_cidrs would be open to "
            "anyone; set serving.auth 'api_key' or list the clients in networking.allowed_cidrs")


def ignored_settings(spec: PlatformSpec) -> list[str]:
    """Warnings for the spec's settings this target does not realize yet, each naming the key and what the
    target does instead. They do not fail the stack; `build` logs them, so `shipyard plan` shows them."""
    warnings = []
    if spec.training.min_nodes:
        warnings.append(f"training.min_nodes: {spec.training.min_nodes} is ignored on Kubernetes; training runs as "
                        "Jobs on the existing cluster's nodes, which this target neither provisions nor keeps warm "
                        "(size the cluster's node pools instead)")
    for i, model in enumerate(spec.models):
        strategy = model.serving.rollout.strategy
        if strategy != "rolling":
            warnings.append(f"models[{i}].serving.rollout.strategy: {strategy!r} is not implemented on Kubernetes; "
                            "the endpoint uses a plain rolling update (one pod surged, none unavailable), without "
                            "canary_percent or bake_minutes")
        if model.monitoring.alerts:
            routed = ("its PrometheusRule alerts go wherever the cluster's Alertmanager routes them"
                      if spec.k8s.prometheus_operator else
                      "no alert rules are declared without kubernetes.prometheus_operator; drift reports land in "
                      "MLflow and on the data volume only")
            warnings.append(f"models[{i}].monitoring.alerts: not delivered on Kubernetes (no Alertmanager receiver "
                            f"is declared); {routed}")
    return warnings


def build(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage, image: ImagePlan,
          secrets: SecretValues) -> TargetResources:
    """Declare the platform on Kubernetes and return its components."""
    check_supported(spec)
    for warning in ignored_settings(spec):
        pulumi.log.warn(warning, resource=platform)
    ctx = declare_platform(platform, spec, package, image, secrets)
    child = pulumi.ResourceOptions(parent=platform)
    registry = KubernetesRegistry(f"{spec.prefix}-registry", ctx, child)
    training = KubernetesTraining(f"{spec.prefix}-training", ctx, registry, child)
    endpoints = {m.name: KubernetesServing(f"{spec.prefix}-{m.name}-serving", ctx, m, registry, training, child)
                 for m in spec.models}
    monitors = {m.name: KubernetesMonitoring(f"{spec.prefix}-{m.name}-monitoring", ctx, m, registry, training, child)
                for m in spec.models}
    dashboard = spec.k8s.dashboard_url or layout.tracking_uri(ctx.namespace_name)
    return TargetResources(training=training, registry=registry, endpoints=endpoints, monitors=monitors,
                           dashboard_url=pulumi.Output.from_input(dashboard),
                           extra_outputs={"namespace": ctx.namespace_name})
