"""The pipelines wheel is content-addressed and reproducible."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from infra.packaging import build_wheel, content_hash, pipeline_requirements

ROOT = Path(__file__).resolve().parents[2]


def copy_project(tmp_path: Path) -> Path:
    """A copy of the files packaging reads: pyproject.toml and pipelines/."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project)
    shutil.copytree(ROOT / "pipelines", project / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    return project


def test_same_tree_same_bytes_and_no_rebuild(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    first = build_wheel(project, tmp_path / "a")
    second = build_wheel(project, tmp_path / "b")
    assert first.rebuilt and second.rebuilt
    assert first.path.read_bytes() == second.path.read_bytes()
    again = build_wheel(project, tmp_path / "a")
    assert not again.rebuilt and again.sha256 == first.sha256


def test_changed_source_gives_a_new_version(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    before = build_wheel(project, tmp_path / "out")
    (project / "pipelines" / "__init__.py").write_text('"""changed."""\n')
    after = build_wheel(project, tmp_path / "out")
    assert after.version != before.version and after.rebuilt
    assert after.content_hash[:12] in after.version


def test_bytecode_caches_do_not_change_the_hash(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    before = content_hash(project)
    cache = project / "pipelines" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "x.cpython-311.pyc").write_bytes(b"\0junk")
    assert content_hash(project) == before


def test_wheel_declares_the_pipelines_extra_and_its_entry_point(tmp_path: Path) -> None:
    built = build_wheel(copy_project(tmp_path), tmp_path / "out")
    with zipfile.ZipFile(built.path) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(n for n in names if n.endswith("METADATA"))).decode()
        record = wheel.read(next(n for n in names if n.endswith("RECORD"))).decode()
        entry_points = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    requires = {line.removeprefix("Requires-Dist: ") for line in metadata.splitlines()
                if line.startswith("Requires-Dist")}
    assert requires == set(pipeline_requirements(ROOT))
    assert f"Version: {built.version}" in metadata
    assert "pipelines/__init__.py" in names
    assert all(name in record for name in names)
    assert "shipyard-pipelines = pipelines.__main__:main" in entry_points
