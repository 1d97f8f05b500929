"""The four platform components every target builds, and the outputs each one must give; and the runtime
image every cloud target builds and pushes.

A target subclasses the four (keeping the `shipyard:index:<Name>` type tokens), declares its resources
with `parent=self`, sets the contract attributes and ends with `self.done()`, which registers them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pulumi

from infra.image import DOCKERFILE, PLATFORM, ImagePlan


class _Component(pulumi.ComponentResource):
    """A shipyard component: a fixed type token and a contract of named outputs."""

    TOKEN = ""
    CONTRACT: tuple[str, ...] = ()

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TOKEN, name, None, opts)

    @property
    def child(self) -> pulumi.ResourceOptions:
        """Options for a resource owned by this component."""
        return pulumi.ResourceOptions(parent=self)

    def done(self, **extra: pulumi.Input[object]) -> None:
        """Register the contract outputs (each must have been set) plus any `extra` ones."""
        missing = [key for key in self.CONTRACT if getattr(self, key, None) is None]
        if missing:
            raise TypeError(f"{type(self).__name__} did not set {missing}")
        self.register_outputs({**{key: getattr(self, key) for key in self.CONTRACT}, **extra})


class TrainingCluster(_Component):
    """Compute that runs the packaged pipelines on the continuous-training schedule."""

    TOKEN = "shipyard:index:TrainingCluster"
    CONTRACT = ("cluster_name", "package_uri")
    cluster_name: pulumi.Output[str]
    package_uri: pulumi.Output[str]


class ModelRegistry(_Component):
    """MLflow: tracking server, backend database, artifact store."""

    TOKEN = "shipyard:index:ModelRegistry"
    CONTRACT = ("tracking_uri", "artifact_uri")
    tracking_uri: pulumi.Output[str]
    artifact_uri: pulumi.Output[str]


class ServingEndpoint(_Component):
    """Serves one model's champion over MLflow's scoring protocol, autoscaled, with safe rollouts."""

    TOKEN = "shipyard:index:ServingEndpoint"
    CONTRACT = ("url",)
    url: pulumi.Output[str]


class Monitoring(_Component):
    """Covariate shift, prior shift and quality for one model, with alerts that can start retraining."""

    TOKEN = "shipyard:index:Monitoring"
    CONTRACT = ("dashboard_url",)
    dashboard_url: pulumi.Output[str]


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials the build pushes with; `password` is a Pulumi secret."""

    address: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Input[str]


class RuntimeImage(_Component):
    """The project's Dockerfile built for linux/amd64 and pushed as `<repository>:<tag>`; `ref` is the pushed
    digest (`<repository>@sha256:...`), which every workload runs.

    `pulumi-docker-build` (BuildKit through an embedded buildx client) exposes the pushed `digest` as an
    output, takes registry credentials as secret inputs, ignores password changes in its diff (ECR tokens
    rotate every 12 hours without a rebuild) and adds no provenance attestation (v0.0.22's build request
    disables it). Docker v2 media types are asked for explicitly, so the registry receives one plain image
    manifest, not an OCI index: SageMaker's CreateModel refuses OCI media types.
    """

    TOKEN = "shipyard:index:RuntimeImage"
    CONTRACT = ("ref",)
    ref: pulumi.Output[str]

    def __init__(self, name: str, plan: ImagePlan, repository: pulumi.Input[str], login: RegistryLogin | None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        import pulumi_docker_build as docker_build  # only stacks that build need the provider's SDK

        if plan.context is None or plan.tag is None:
            raise ValueError("RuntimeImage needs a plan that builds (runtime_image unset)")
        repository = pulumi.Output.from_input(repository)
        # Paths relative to the program's working directory keep the inputs equal on every machine (an absolute
        # path would differ between a laptop and CI, and a changed input rebuilds).
        context = os.path.relpath(plan.context)
        image = docker_build.Image(
            name,
            context=docker_build.BuildContextArgs(location=context),
            dockerfile=docker_build.DockerfileArgs(location=os.path.join(context, DOCKERFILE)),
            platforms=[docker_build.Platform(PLATFORM)],
            tags=[pulumi.Output.concat(repository, ":", plan.tag)],
            # The registry export below pushes; `push` would add a second, default-configured one.
            push=False,
            exports=[docker_build.ExportArgs(registry=docker_build.ExportRegistryArgs(
                oci_media_types=False, push=True))],
            registries=[docker_build.RegistryArgs(address=login.address, username=login.username,
                                                  password=pulumi.Output.secret(login.password))] if login else None,
            opts=self.child)
        self.ref = pulumi.Output.concat(repository, "@", image.digest)
        self.done()
