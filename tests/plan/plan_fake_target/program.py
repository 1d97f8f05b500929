"""The fake target's program.

Its behaviour is chosen by the stack's `tags.fake`: `ok` builds a minimal platform, `public` also
exposes the registry through a LoadBalancer Service (a mandatory violation), `raise-in-infra` fails
inside infra/ code, `log-error` logs through the engine and raises a RunError, `apply-error` fails
inside an `apply`.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra import components
from infra.secrets import SecretValues
from infra.spec import PlatformSpec, Secret
from infra.targets.base import TargetResources


def _fail_in_apply(value: str) -> str:
    raise KeyError(f"no such key {value!r}")


def _registry(spec: PlatformSpec, opts: pulumi.ResourceOptions, mode: str) -> components.ModelRegistry:
    registry = components.ModelRegistry(f"{spec.prefix}-registry", opts)
    kind = "LoadBalancer" if mode == "public" else "ClusterIP"
    service = k8s.core.v1.Service("mlflow", spec=k8s.core.v1.ServiceSpecArgs(
        type=kind, ports=[k8s.core.v1.ServicePortArgs(port=5000)]), opts=registry.child)
    if mode == "apply-error":
        k8s.core.v1.ConfigMap("broken", data={"x": service.metadata.apply(lambda m: _fail_in_apply(m.name))},
                              opts=registry.child)
    registry.tracking_uri = pulumi.Output.from_input("http://mlflow:5000")
    registry.artifact_uri = pulumi.Output.from_input("file:///artifacts")
    registry.done()
    return registry


def build(platform: pulumi.ComponentResource, spec: PlatformSpec, package: object, image: object,
          secrets: SecretValues) -> TargetResources:
    """The fake platform; see the module docstring for the modes."""
    mode = spec.tags.get("fake", "ok")
    opts = pulumi.ResourceOptions(parent=platform)
    if mode == "log-error":
        pulumi.log.error("the fake cluster refused the namespace")
        raise pulumi.RunError("declaring the fake platform failed")
    if mode == "raise-in-infra":
        secrets.value(Secret(ref="db-credentials", source="registry.database.external_url"))
    training = components.TrainingCluster(f"{spec.prefix}-training", opts)
    k8s.core.v1.ConfigMap("wheel", data={"name": "pipelines.whl"}, opts=training.child)
    training.cluster_name = pulumi.Output.from_input("fake")
    training.package_uri = pulumi.Output.from_input("configmap://fake/wheel")
    training.done()
    registry = _registry(spec, opts, mode)
    endpoints, monitors = {}, {}
    for model in spec.models:
        endpoint = components.ServingEndpoint(f"{spec.prefix}-{model.name}-serving", opts)
        endpoint.url = pulumi.Output.from_input(f"http://{model.name}:8080")
        endpoint.done()
        monitor = components.Monitoring(f"{spec.prefix}-{model.name}-monitoring", opts)
        monitor.dashboard_url = pulumi.Output.from_input(f"http://dash/{model.name}")
        monitor.done()
        endpoints[model.name], monitors[model.name] = endpoint, monitor
    return TargetResources(training, registry, endpoints, monitors, pulumi.Output.from_input("http://dash"))
