"""`state.json` of a local stack: what `up` started (pids, ports, fingerprints) and the installed wheel."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ProcessRecord:
    """One started process: its pid (= its process group), start time, fingerprint and port."""

    pid: int
    start_ticks: int | None
    fingerprint: str
    port: int | None
    argv: list[str]
    log: str


@dataclass
class State:
    """Everything `up` recorded."""

    stack: str = ""
    wheel_version: str | None = None
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, ProcessRecord] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> State:
        """The recorded state, or an empty one."""
        if not path.is_file():
            return cls()
        data: dict[str, Any] = json.loads(path.read_text())
        processes = {name: ProcessRecord(**record) for name, record in data.pop("processes", {}).items()}
        return cls(**data, processes=processes)

    def save(self, path: Path) -> None:
        """Write atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        os.replace(partial, path)
