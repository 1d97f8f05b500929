"""Lineage helpers: the package hash equals the wheel builder's, the commit comes from env or git."""

from __future__ import annotations

import subprocess

import pytest
from pipeline_helpers import PROJECT

from infra.packaging import content_hash
from pipelines.lineage import git_commit, lineage_tags, package_info


def test_package_hash_is_computed_like_the_wheel_builder_does() -> None:
    package_info.cache_clear()  # computed now, next to the builder's hash (other sessions may edit the tree)
    info = package_info()
    assert not info.installed  # the tests import the source tree
    assert info.content_hash == content_hash(PROJECT)
    assert info.version == f"0.1.0+{info.content_hash[:12]}"


def test_commit_from_the_environment_else_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_GIT_COMMIT", "feedface")
    assert git_commit() == "feedface"
    assert lineage_tags("demo://x", "ab" * 32, 10)["mlflow.source.git.commit"] == "feedface"
    monkeypatch.delenv("SHIPYARD_GIT_COMMIT")
    head = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert git_commit() == (head.stdout.strip() if head.returncode == 0 else "unknown")
