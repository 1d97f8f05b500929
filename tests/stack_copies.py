"""The `project` and `captured` fixtures of a test directory that plans extra stacks of its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from infra.plan_capture import Capture


def extra_stack_fixtures(extra_stacks: Mapping[str, str]) -> tuple[Any, Any]:
    """(`project`, `captured`) session fixtures: a copy of the project with `extra_stacks` (name -> YAML), and the
    capture of any stack of that copy, evaluated once per session (the root fixture's cache).

    In a directory's conftest: `project, captured = extra_stack_fixtures(EXTRA_STACKS)`.
    """

    @pytest.fixture(scope="session")
    def project(project_copy: Callable[[Mapping[str, str]], Path]) -> Path:
        return project_copy(extra_stacks)

    @pytest.fixture(scope="session")
    def captured(captured: Callable[..., Capture], project: Path) -> Callable[[str], Capture]:
        return lambda stack: captured(stack, project)

    return project, captured
