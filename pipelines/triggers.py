"""How `monitor` starts retraining: a tiny plugin registry, `name -> "module:Class"`, imported on first use.

A run configuration's `retrain` value is `none`, `inline`, or `<name>:<target>` (e.g.
`kubernetes-job:ml/churn-train`, `sagemaker-pipeline:churn-retrain`). The class is constructed with the
`<target>` part (an empty string for `inline`) and started with the reason and the run configuration.
The names and the syntax are `pipelines.catalog`'s (`TRIGGERS`, `parse_trigger`), which the run configuration
checks; the registry holds references, not imports, so the classes (`InlineTrigger` in `pipelines.steps`, the
cloud adapters) sit above everything they are named by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pipelines.catalog import TRIGGERS, parse_trigger
from pipelines.plugins import resolve

if TYPE_CHECKING:
    from pipelines.config import RunConfig


class RetrainTrigger(Protocol):
    """Starts a retraining run somewhere; returns an identifier of what it started (a run, a job, an execution)."""

    def start(self, reason: str, config: RunConfig) -> str:
        """Start retraining for `config`'s model because of `reason`."""
        ...


def get_trigger(value: str) -> RetrainTrigger | None:
    """The trigger a `retrain` value names, constructed with its target; None for `none`."""
    parsed = parse_trigger(value)
    if parsed is None:
        return None
    name, target = parsed
    return resolve(TRIGGERS[name])(target)

