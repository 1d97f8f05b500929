"""Lineage: which code, which package and which data made a model.

The package's content hash is computed exactly as `infra/packaging.py: content_hash` does (relative
source paths and bytes, then the declared requirements) without importing `infra`: the pipelines run
alone inside the wheel. Installed from the wheel, the requirements come from the wheel's metadata;
in a source tree, from pyproject.toml's `pipelines` extra.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DISTRIBUTION = "shipyard-pipelines"
_SOURCE_SUFFIXES = {".py", ".json", ".html", ".typed"}
_PACKAGE_DIR = Path(__file__).resolve().parent

#: Tag names carried by runs and model versions.
TAG_COMMIT = "git.commit"
TAG_PACKAGE_VERSION = "package.version"
TAG_PACKAGE_HASH = "package.hash"
TAG_DATASET_URI = "dataset.uri"
TAG_DATASET_HASH = "dataset.hash"
TAG_DATASET_ROWS = "dataset.rows"


@dataclass(frozen=True)
class PackageInfo:
    """The pipelines package that is running: version, content hash, and whether it is an installed wheel."""

    version: str
    content_hash: str
    installed: bool


def _installed_distribution() -> importlib.metadata.Distribution | None:
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    # Only if this very module belongs to it (a wheel elsewhere on the path does not describe this code).
    files = dist.files or []
    ours = any(Path(dist.locate_file(f)).resolve() == Path(__file__).resolve() for f in files
               if str(f).endswith("lineage.py"))
    return dist if ours else None


def source_files(package_dir: Path = _PACKAGE_DIR) -> list[Path]:
    """The files that make up the package, in the order the hash reads them."""
    return sorted(p for p in package_dir.rglob("*")
                  if p.is_file() and p.suffix in _SOURCE_SUFFIXES and "__pycache__" not in p.parts)


def content_hash(requirements: list[str], package_dir: Path = _PACKAGE_DIR) -> str:
    """SHA-256 over the sources' paths (relative to the package's parent) and bytes, then the requirements."""
    digest = hashlib.sha256()
    root = package_dir.parent
    for path in source_files(package_dir):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for requirement in requirements:
        digest.update(requirement.encode() + b"\n")
    return digest.hexdigest()


def _source_tree_metadata() -> tuple[str, list[str]]:
    pyproject = _PACKAGE_DIR.parent / "pyproject.toml"
    if not pyproject.is_file():
        return "0.0.0", []
    data = tomllib.loads(pyproject.read_text())
    project = data.get("project", {})
    return project.get("version", "0.0.0"), list(project.get("optional-dependencies", {}).get("pipelines", []))


@cache
def package_info() -> PackageInfo:
    """Version and content hash of the running pipelines package."""
    dist = _installed_distribution()
    if dist is not None:
        requirements = list(dist.requires or [])
        return PackageInfo(version=dist.version, content_hash=content_hash(requirements), installed=True)
    base, requirements = _source_tree_metadata()
    digest = content_hash(requirements)
    return PackageInfo(version=f"{base}+{digest[:12]}", content_hash=digest, installed=False)


def git_commit() -> str:
    """$SHIPYARD_GIT_COMMIT, else the source tree's HEAD (never for an installed wheel), else 'unknown'."""
    if os.environ.get("SHIPYARD_GIT_COMMIT"):
        return os.environ["SHIPYARD_GIT_COMMIT"]
    if package_info().installed:
        return "unknown"
    try:
        out = subprocess.run(["git", "-C", str(_PACKAGE_DIR), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def lineage_tags(dataset_uri: str, dataset_hash: str, rows: int) -> dict[str, str]:
    """The lineage tags of a training run and its model version."""
    package = package_info()
    commit = git_commit()
    tags = {
        TAG_COMMIT: commit,
        TAG_PACKAGE_VERSION: package.version,
        TAG_PACKAGE_HASH: package.content_hash,
        TAG_DATASET_URI: dataset_uri,
        TAG_DATASET_HASH: dataset_hash,
        TAG_DATASET_ROWS: str(rows),
    }
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    return tags


def describe(tags: dict[str, Any]) -> str:
    """A one-line lineage summary."""
    return (f"commit {str(tags.get(TAG_COMMIT, '?'))[:12]}, package {tags.get(TAG_PACKAGE_VERSION, '?')}, "
            f"data {tags.get(TAG_DATASET_URI, '?')} ({str(tags.get(TAG_DATASET_HASH, '?'))[:12]})")
