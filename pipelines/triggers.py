"""How `monitor` starts retraining: a tiny plugin registry, `name -> "module:Class"`, imported on first use.

A run configuration's `retrain` value is `none`, `inline`, or `<name>:<target>` (e.g.
`kubernetes-job:ml/churn-train`, `sagemaker-pipeline:churn-retrain`). The class is constructed with the
`<target>` part (an empty string for `inline`) and started with the reason and the run configuration.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pipelines.config import RunConfig

#: Trigger name -> the class implementing it. The adapters live next to the cloud code that needs them.
TRIGGERS: dict[str, str] = {
    "inline": "pipelines.triggers:InlineTrigger",
    "kubernetes-job": "pipelines.adapters.kubernetes_job:KubernetesJobTrigger",
    "sagemaker-pipeline": "pipelines.adapters.aws:SageMakerPipelineTrigger",
    "container-apps-job": "pipelines.adapters.azure:ContainerAppsJobTrigger",
}
#: Triggers whose `<target>` part is required.
_NEEDS_TARGET = {"kubernetes-job", "sagemaker-pipeline", "container-apps-job"}


class RetrainTrigger(Protocol):
    """Starts a retraining run somewhere; returns an identifier of what it started (a run, a job, an execution)."""

    def start(self, reason: str, config: RunConfig) -> str:
        """Start retraining for `config`'s model because of `reason`."""
        ...


def parse_trigger(value: str) -> tuple[str, str] | None:
    """`(name, target)` of a `retrain` value, None for `none`; ValueError for an unknown or incomplete one."""
    if value == "none":
        return None
    name, _, target = value.partition(":")
    if name not in TRIGGERS:
        raise ValueError(f"unknown retrain trigger {name!r}; choose none or one of {sorted(TRIGGERS)}")
    if name in _NEEDS_TARGET and not target:
        raise ValueError(f"{name!r} needs a target: '{name}:<target>'")
    if name == "kubernetes-job" and "/" not in target:
        raise ValueError("kubernetes-job needs '<namespace>/<cronjob>'")
    return name, target


def get_trigger(value: str) -> RetrainTrigger | None:
    """The trigger a `retrain` value names, constructed with its target; None for `none`."""
    parsed = parse_trigger(value)
    if parsed is None:
        return None
    name, target = parsed
    module, _, cls = TRIGGERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(target)


class InlineTrigger:
    """Retrain in this process: the whole pipeline through the gates, tagged with the reason."""

    def __init__(self, target: str = "") -> None:
        self.target = target

    def start(self, reason: str, config: RunConfig) -> str:
        """Run `retrain` now; returns `inline:<run id>` and the outcome."""
        from pipelines.steps import retrain

        result = retrain(config, reason=reason)
        return f"inline:{result.data.get('run_id', '?')} ({result.data.get('outcome', 'failed')})"
