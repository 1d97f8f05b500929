"""The spec's schedules, by key path, and the problems a target's scheduler has with them."""

from __future__ import annotations

from collections.abc import Callable

from infra.problems import Problem
from infra.spec import PlatformSpec


def schedules(spec: PlatformSpec) -> dict[str, str]:
    """Key path -> cron expression: the training schedule and every model's monitoring schedule."""
    found = {"training.schedule": spec.training.schedule}
    found.update({f"models[{i}].monitoring.schedule": m.monitoring.schedule for i, m in enumerate(spec.models)})
    return found


def schedule_problems(spec: PlatformSpec, translate: Callable[[str], str]) -> list[Problem]:
    """A problem per schedule the target's `translate` (cron -> the scheduler's syntax) refuses, at its key."""
    problems = []
    for key, expression in schedules(spec).items():
        try:
            translate(expression)
        except ValueError as exc:
            problems.append(Problem.at(key, str(exc)))
    return problems
