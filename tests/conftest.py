"""Fixtures shared by every test directory: the project root, project copies and cached offline captures.

A capture evaluates the real program under the SDK's mock runtime; `infra.plan_capture.capture` gives
it a fresh event loop and resets the SDK's global state before and after, so one capture per stack
per session is safe to share between tests (treat it as read-only).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

# skops (MLflow's safe format for scikit-learn models) scans every loaded module when first imported; after
# pulumi_aws's lazy modules are loaded that scan costs 15-70 s. Importing it first keeps it at about 3 s.
import skops.io  # noqa: F401  isort: skip
from infra.image import CONTEXT_FILES
from infra.plan_capture import Capture, capture
from infra.stackfile import load_stack

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_dir() -> Path:
    """The repository's project directory (Pulumi.yaml, stacks/, pipelines/)."""
    return ROOT


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Mapping[str, str]], Path]:
    """A copy of the files the program reads, plus extra stack files (name -> YAML); one copy per set."""
    copies: dict[frozenset[tuple[str, str]], Path] = {}

    def make(extra_stacks: Mapping[str, str]) -> Path:
        key = frozenset(extra_stacks.items())
        if key not in copies:
            dest = tmp_path_factory.mktemp("project")
            for name in ("Pulumi.yaml", "pyproject.toml", *CONTEXT_FILES):
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / name, dest / name)
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            for name in ("pipelines", "stacks"):
                shutil.copytree(ROOT / name, dest / name, ignore=ignore)
            for stack, text in extra_stacks.items():
                (dest / "stacks" / f"Pulumi.{stack}.yaml").write_text(text)
            copies[key] = dest
        return copies[key]

    return make


@pytest.fixture(scope="session")
def captured() -> Callable[..., Capture]:
    """`captured(stack, project=ROOT)`: the capture of a stack, evaluated once per session and project."""
    cache: dict[tuple[Path, str], Capture] = {}

    def get(stack: str, project: Path = ROOT) -> Capture:
        if (project, stack) not in cache:
            cache[project, stack] = capture(load_stack(stack, project_dir=project), project)
        return cache[project, stack]

    return get
