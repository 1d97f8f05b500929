"""The fake target refuses nothing and ignores only `training.min_nodes` (so the plan shows a notice)."""

from __future__ import annotations

from infra.problems import Notice, Problem
from infra.spec import PlatformSpec


def check(spec: PlatformSpec) -> list[Problem]:
    """Nothing is refused."""
    return []


def ignored(spec: PlatformSpec) -> list[Notice]:
    """`training.min_nodes`, when set, is not honoured."""
    return [Notice("training.min_nodes", "ignored by the fake target")] if spec.training.min_nodes else []
