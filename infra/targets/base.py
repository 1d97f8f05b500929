"""What every target's `build` returns: the four components, by role."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from infra.components import ModelRegistry, Monitoring, ServingEndpoint, TrainingCluster


@dataclass
class TargetResources:
    """The components a target built for one platform, plus the platform-level dashboard."""

    training: TrainingCluster
    registry: ModelRegistry
    endpoints: dict[str, ServingEndpoint]
    monitors: dict[str, Monitoring]
    dashboard_url: pulumi.Output[str]
    extra_outputs: dict[str, pulumi.Input[object]] = field(default_factory=dict)
