"""The pipelines wheel: built from `pipelines/`, versioned by a content hash, byte-for-byte reproducible.

The same source tree always gives the same version and the same bytes; a changed tree gives a new
version, and only then does any compute definition that ships the wheel change. An existing wheel
of the same version is never rebuilt.
"""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

DISTRIBUTION = "shipyard-pipelines"
PACKAGE = "pipelines"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SOURCE_SUFFIXES = {".py", ".json", ".html", ".typed"}


@dataclass(frozen=True)
class PipelinePackage:
    """A built wheel of the pipelines and what identifies it."""

    path: Path
    version: str
    content_hash: str
    sha256: str
    requirements: tuple[str, ...]
    rebuilt: bool

    @property
    def filename(self) -> str:
        """The wheel's file name (carries the version, hence the content hash)."""
        return self.path.name


def pipeline_requirements(project_dir: Path) -> tuple[str, ...]:
    """The pipelines' runtime dependencies: the `pipelines` extra of pyproject.toml, the one source."""
    data = tomllib.loads((project_dir / "pyproject.toml").read_text())
    return tuple(data["project"]["optional-dependencies"]["pipelines"])


def _base_version(project_dir: Path) -> str:
    return tomllib.loads((project_dir / "pyproject.toml").read_text())["project"]["version"]


def source_files(project_dir: Path) -> list[Path]:
    """The files that make up the pipelines package, in a stable order."""
    root = project_dir / PACKAGE
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix in _SOURCE_SUFFIXES and "__pycache__" not in p.parts
    )


def content_hash(project_dir: Path) -> str:
    """SHA-256 over the sources' relative paths and bytes, and the declared dependencies."""
    digest = hashlib.sha256()
    for path in source_files(project_dir):
        rel = path.relative_to(project_dir).as_posix()
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    for requirement in pipeline_requirements(project_dir):
        digest.update(requirement.encode() + b"\n")
    return digest.hexdigest()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _metadata(version: str, requirements: tuple[str, ...]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {DISTRIBUTION}",
        f"Version: {version}",
        "Summary: shipyard's ML pipelines: validate, train, gate, register, serve and monitor.",
        "Requires-Python: >=3.11",
        *(f"Requires-Dist: {req}" for req in requirements),
    ]
    return "\n".join(lines) + "\n"


def _wheel_entries(project_dir: Path, version: str, requirements: tuple[str, ...]) -> list[tuple[str, bytes]]:
    dist_info = f"{DISTRIBUTION.replace('-', '_')}-{version}.dist-info"
    entries = [(p.relative_to(project_dir).as_posix(), p.read_bytes()) for p in source_files(project_dir)]
    entries += [
        (f"{dist_info}/METADATA", _metadata(version, requirements).encode()),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: shipyard\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{dist_info}/entry_points.txt", b"[console_scripts]\nshipyard-pipelines = pipelines.__main__:main\n"),
    ]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{dist_info}/RECORD,,\n"
    return [*entries, (f"{dist_info}/RECORD", record.encode())]


def build_wheel(project_dir: Path, out_dir: Path | None = None) -> PipelinePackage:
    """Build (or reuse) the pipelines wheel for the current source tree."""
    project_dir = project_dir.resolve()
    out_dir = (out_dir or project_dir / "dist").resolve()
    requirements = pipeline_requirements(project_dir)
    digest = content_hash(project_dir)
    version = f"{_base_version(project_dir)}+{digest[:12]}"
    path = out_dir / f"{DISTRIBUTION.replace('-', '_')}-{version}-py3-none-any.whl"
    rebuilt = not path.is_file()
    if rebuilt:
        out_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
            for name, data in _wheel_entries(project_dir, version, requirements):
                info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                wheel.writestr(info, data)
        partial.replace(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return PipelinePackage(path=path, version=version, content_hash=digest, sha256=sha,
                           requirements=requirements, rebuilt=rebuilt)
