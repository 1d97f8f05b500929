"""The Pulumi program: a validated spec becomes a `Platform` on its target, with one outputs contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from infra.image import ImagePlan, plan_image
from infra.packaging import PipelinePackage, build_wheel
from infra.secrets import SecretValues, read_secrets
from infra.spec import PlatformSpec
from infra.stackfile import LoadedStack, SpecError, find_project_dir, load_stack
from infra.targets import load_target
from infra.targets.base import TargetResources

#: Keys every target exports, whatever the cloud: CD pipelines and StackReferences rely on them.
OUTPUT_CONTRACT = (
    "target",
    "environment",
    "region",
    "training_cluster",
    "pipeline_package_uri",
    "pipeline_package_version",
    "tracking_uri",
    "artifact_uri",
    "endpoints",
    "monitoring_dashboard_url",
    "models",
)


def contract_outputs(spec: PlatformSpec, package: PipelinePackage, built: TargetResources) -> dict[str, Any]:
    """The stack outputs of a built platform, identical in keys on every target."""
    models = {
        m.name: {
            "registered_model": m.registered_model,
            "alias": m.serving.alias,
            "endpoint": built.endpoints[m.name].url,
            "dashboard_url": built.monitors[m.name].dashboard_url,
        }
        for m in spec.models
    }
    return {
        "target": spec.target,
        "environment": spec.environment,
        "region": spec.region or "",
        "training_cluster": built.training.cluster_name,
        "pipeline_package_uri": built.training.package_uri,
        "pipeline_package_version": package.version,
        "tracking_uri": built.registry.tracking_uri,
        "artifact_uri": built.registry.artifact_uri,
        "endpoints": {name: endpoint.url for name, endpoint in built.endpoints.items()},
        "monitoring_dashboard_url": built.dashboard_url,
        "models": models,
        **built.extra_outputs,
    }


class Platform(pulumi.ComponentResource):
    """The whole platform on one target: training cluster, registry, and per model serving and monitoring."""

    outputs: dict[str, Any]

    def __init__(self, name: str, spec: PlatformSpec, package: PipelinePackage, image: ImagePlan,
                 secrets: SecretValues, opts: pulumi.ResourceOptions | None = None):
        super().__init__("shipyard:index:Platform", name, None, opts)
        built = load_target(spec.target).build(self, spec, package, image, secrets)
        self.outputs = contract_outputs(spec, package, built)
        self.register_outputs(self.outputs)


def declare(loaded: LoadedStack, package: PipelinePackage, image: ImagePlan) -> Platform:
    """Declare the platform of a validated stack and export the outputs contract (secrets read here, once)."""
    platform = Platform(loaded.spec.prefix, loaded.spec, package, image, read_secrets(loaded.spec))
    for key, value in platform.outputs.items():
        pulumi.export(key, value)
    return platform


def main(project_dir: Path | None = None, stack_file: Path | None = None) -> Platform | None:
    """Entry point of `pulumi up` (and of the offline plan): validate first, then declare everything."""
    project_dir = project_dir or find_project_dir(Path(__file__).parent)
    try:
        loaded = load_stack(pulumi.get_stack(), config_file=stack_file, project_dir=project_dir)
    except SpecError as exc:
        for problem in exc.problems:
            pulumi.log.error(str(problem))
        raise pulumi.RunError(f"the stack's spec has {len(exc.problems)} problem(s); nothing was declared") from None
    for notice in loaded.notices:
        pulumi.log.warn(f"not honoured by target {loaded.spec.target!r}: {notice}")
    package = build_wheel(project_dir)
    return declare(loaded, package, plan_image(loaded.spec.runtime_image, project_dir))
