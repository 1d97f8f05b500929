"""The Kubernetes target's program: the whole platform in one namespace of an existing cluster.

`build` declares the namespace-wide objects under the Platform component (namespace, default-deny and DNS
NetworkPolicies, the shared data volume), then the four components: `KubernetesRegistry` (MLflow +
PostgreSQL), `KubernetesTraining` (the shipped wheel, run configurations, training CronJobs and initial
Jobs), and per model `KubernetesServing` and `KubernetesMonitoring`. Modules:

- `sizes`: size class -> requests / limits (the one table to edit for a new size);
- `layout`: names, ports, paths; `labels`: `app.kubernetes.io/*`; `network`: the allowed flows; `rbac`: the
  monitor's only permissions; `workload`: security contexts and the shared "install the wheel, then run" pod.
"""

from __future__ import annotations

import pulumi

from infra.image import ImagePlan
from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets.base import TargetResources
from infra.targets.kubernetes import layout
from infra.targets.kubernetes.monitoring import KubernetesMonitoring
from infra.targets.kubernetes.platform import declare_platform
from infra.targets.kubernetes.profile import ClusterProfile
from infra.targets.kubernetes.registry import KubernetesRegistry
from infra.targets.kubernetes.serving import KubernetesServing
from infra.targets.kubernetes.training import KubernetesTraining


def build(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage, image: ImagePlan,
          secrets: SecretValues) -> TargetResources:
    """Declare the platform on Kubernetes and return its components."""
    return build_workloads(platform, spec, package, image, secrets, ClusterProfile())


def build_workloads(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage,
                    image: ImagePlan, secrets: SecretValues, profile: ClusterProfile) -> TargetResources:
    """Declare the Kubernetes target's workloads under `platform` with what a cloud's cluster `profile` changes
    (nothing, for the Kubernetes target itself); the cloud profiles call this on the cluster they create, with
    the image they pushed as `profile.image` (`image` then only names it, for the initial Job)."""
    ctx = declare_platform(platform, spec, package, image, secrets, profile)
    child = profile.options(platform)
    registry = KubernetesRegistry(f"{spec.prefix}-registry", ctx, child)
    training = KubernetesTraining(f"{spec.prefix}-training", ctx, registry, child)
    endpoints = {m.name: KubernetesServing(f"{spec.prefix}-{m.name}-serving", ctx, m, registry, training, child)
                 for m in spec.models}
    monitors = {m.name: KubernetesMonitoring(f"{spec.prefix}-{m.name}-monitoring", ctx, m, registry, training, child)
                for m in spec.models}
    dashboard = spec.k8s.dashboard_url or layout.tracking_uri(ctx.namespace_name, spec.k8s.cluster_domain)
    return TargetResources(training=training, registry=registry, endpoints=endpoints, monitors=monitors,
                           dashboard_url=pulumi.Output.from_input(dashboard),
                           extra_outputs={"namespace": ctx.namespace_name})
