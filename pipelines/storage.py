"""Bytes in and out of a local path or any fsspec URI (s3://, gs://, az://, abfs://, memory://, file://).

Credentials and endpoints come from the environment, as each fsspec backend reads them
(AWS_*, GOOGLE_APPLICATION_CREDENTIALS / STORAGE_EMULATOR_HOST, AZURE_STORAGE_CONNECTION_STRING, or
fsspec's own FSSPEC_<PROTOCOL>_<OPTION> variables). fsspec is imported only for remote URIs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_remote(uri: str) -> bool:
    """Whether `uri` names something other than a plain local path."""
    return bool(_SCHEME.match(uri)) and not uri.startswith("file://")


def local_path(uri: str) -> Path:
    """The local path of a plain path or a file:// URI."""
    return Path(uri.removeprefix("file://")).expanduser()


def _fs(uri: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(uri)


def read_bytes(uri: str) -> bytes:
    """The whole content of the file at `uri`."""
    if not is_remote(uri):
        return local_path(uri).read_bytes()
    fs, path = _fs(uri)
    return fs.cat_file(path)


def write_bytes(uri: str, data: bytes) -> None:
    """Write `data` to `uri`, creating parent directories where that means anything; atomic locally."""
    if not is_remote(uri):
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)
        return
    fs, path = _fs(uri)
    fs.pipe_file(path, data)


def join(uri: str, *parts: str) -> str:
    """`uri` with path parts appended, '/'-separated."""
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


@dataclass(frozen=True)
class FileEntry:
    """A file found under a prefix: its URI and modification time (epoch seconds, None if unknown)."""

    uri: str
    mtime: float | None


def _mtime(info: dict[str, Any]) -> float | None:
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        if isinstance(value, int | float):
            return float(value)
        try:
            from datetime import datetime

            return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
    return None


def list_files(prefix: str, suffix: str) -> list[FileEntry]:
    """Every file under `prefix` (recursively) whose name ends with `suffix`, sorted by URI."""
    if not is_remote(prefix):
        root = local_path(prefix)
        if not root.exists():
            return []
        return [FileEntry(str(p), p.stat().st_mtime) for p in sorted(root.rglob(f"*{suffix}")) if p.is_file()]
    fs, path = _fs(prefix)
    if not fs.exists(path):
        return []
    found = fs.find(path, detail=True)
    return [FileEntry(fs.unstrip_protocol(name), _mtime(info))
            for name, info in sorted(found.items()) if name.endswith(suffix)]
