"""The four platform components every target builds, and the outputs each one must give.

A target subclasses these (keeping the `shipyard:index:<Name>` type tokens), declares its resources
with `parent=self`, sets the contract attributes and ends with `self.done()`, which registers them.
"""

from __future__ import annotations

import pulumi


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
