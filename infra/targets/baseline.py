"""Which settings of a spec differ from what its target and environment give by default.

A target's `ignored` names the settings it does not honour; a default nobody changed (a schema default,
or an environment default such as dev's one-day backups) is not news, so notices are about the values
that differ from the baseline: the same target, environment, region and model names with nothing else set.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from infra.merge import with_defaults
from infra.spec import PlatformSpec


@cache
def _baseline(target: str, environment: str, region: str | None,
              models: tuple[tuple[str, str], ...]) -> PlatformSpec:
    overlay = {"target": target, "environment": environment, "region": region,
               "models": [{"name": name, "pipeline": {"task": task, "estimator": _ESTIMATOR[task]}}
                          for name, task in models]}
    return PlatformSpec.model_validate(with_defaults({}, overlay)[0])


_ESTIMATOR = {"classification": "logistic_regression", "regression": "ridge"}


def value_at(node: Any, path: str) -> Any:
    """The value at a dotted key path ('models[0].serving.max_replicas') of a spec or section."""
    for part in path.replace("[", ".").replace("]", "").split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    return node


def changed(spec: PlatformSpec, *paths: str) -> list[str]:
    """Those of `paths` whose value in `spec` differs from the baseline of its target and environment."""
    models = tuple((m.name, m.pipeline.task) for m in spec.models)
    baseline = _baseline(spec.target, spec.environment, spec.region, models)
    return [path for path in paths if value_at(spec, path) != value_at(baseline, path)]
