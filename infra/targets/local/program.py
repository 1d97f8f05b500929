"""The local target's program: the platform as processes on this machine (`shipyard up --stack local`).

The Pulumi side declares the four components with no cloud resources: their outputs are where the local
supervisor (`infra.local`) runs everything, from the same pure functions it uses (ports from the spec,
paths under the state directory), so `shipyard plan --stack local` shows the same outputs contract as
every other target.
"""

from __future__ import annotations

import pulumi

from infra.components import ModelRegistry, Monitoring, ServingEndpoint, TrainingCluster
from infra.image import ImagePlan
from infra.local import layout as lay
from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import ModelSpec, PlatformSpec
from infra.targets.base import TargetResources


class LocalTraining(TrainingCluster):
    """The compute environment: a virtual environment under the state directory with the wheel installed."""

    def __init__(self, name: str, spec: PlatformSpec, layout: lay.Layout, package: PipelinePackage,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.cluster_name = pulumi.Output.from_input(f"{spec.prefix}-local")
        self.package_uri = pulumi.Output.from_input(package.path.as_uri())
        self.done(environment=str(layout.venv), package_version=package.version)


class LocalRegistry(ModelRegistry):
    """The MLflow tracking server on loopback, SQLite backend and artifacts under the state directory."""

    def __init__(self, name: str, layout: lay.Layout, port: int, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.tracking_uri = pulumi.Output.from_input(lay.url(port))
        self.artifact_uri = pulumi.Output.from_input(layout.artifacts.as_uri())
        self.done(backend_store_uri=layout.backend_store_uri)


class LocalServing(ServingEndpoint):
    """One model's server on its loopback port."""

    def __init__(self, name: str, model: ModelSpec, port: int, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.url = pulumi.Output.from_input(lay.url(port))
        self.done(alias=model.serving.alias, registered_model=model.registered_model)


class LocalMonitoring(Monitoring):
    """One model's monitor, run by the local scheduler; its dashboard is the latest HTML drift report."""

    def __init__(self, name: str, model: ModelSpec, layout: lay.Layout, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.dashboard_url = pulumi.Output.from_input(layout.latest_report(model).with_suffix(".html").as_uri())
        self.done(schedule=model.monitoring.schedule, inference_log_uri=str(layout.inference_log(model.name)))


def build(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage, image: ImagePlan,
          secrets: SecretValues) -> TargetResources:
    """Declare the local platform's components (no resources: the supervisor runs the processes; no image, no
    secrets)."""
    from infra.stackfile import find_project_dir

    layout = lay.Layout(lay.state_dir(find_project_dir(), pulumi.get_stack()))
    ports = lay.planned_ports(spec, lay.port_base())
    child = pulumi.ResourceOptions(parent=platform)
    training = LocalTraining(f"{spec.prefix}-training", spec, layout, package, child)
    registry = LocalRegistry(f"{spec.prefix}-registry", layout, ports[lay.REGISTRY], child)
    endpoints = {m.name: LocalServing(f"{spec.prefix}-{m.name}-serving", m, ports[lay.serving_process(m.name)], child)
                 for m in spec.models}
    monitors = {m.name: LocalMonitoring(f"{spec.prefix}-{m.name}-monitoring", m, layout, child) for m in spec.models}
    return TargetResources(training=training, registry=registry, endpoints=endpoints, monitors=monitors,
                           dashboard_url=pulumi.Output.from_input(layout.reports.as_uri()),
                           extra_outputs={"state_dir": str(layout.root)})
