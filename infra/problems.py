"""What validation says about a stack: problems (it is refused) and notices (a setting is not honoured).

Both name the key path at fault; the stack loader fills in the file the key came from (the stack file or
the shared spec), so a target's `check` and `ignored` speak only in key paths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack: the file, the key path inside the spec, and what is wrong."""

    file: str
    path: str
    message: str

    @classmethod
    def at(cls, path: str, message: str) -> Problem:
        """A problem at a key path, its file to be filled in by the loader."""
        return cls("", path, message)

    def located(self, file: str) -> Problem:
        """This problem, in `file`."""
        return replace(self, file=file)

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True)
class Notice:
    """A setting the selected target does not honour, by key path, and what happens instead."""

    path: str
    message: str
    file: str = ""

    def located(self, file: str) -> Notice:
        """This notice, in `file`."""
        return replace(self, file=file)

    def to_json(self) -> dict[str, Any]:
        """The notice as `plan --json` lists it under `warnings`."""
        return {"file": self.file, "path": self.path, "message": self.message}

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.file else self.path
        return f"{where}: {self.message}"


def format_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('models', 0, 'serving', 'max_replicas') -> 'models[0].serving.max_replicas'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_path(path: str) -> tuple[Any, ...]:
    """'models[0].serving.max_replicas' -> ('models', 0, 'serving', 'max_replicas')."""
    loc: list[Any] = []
    for part in path.replace("[", ".[").split("."):
        if part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            loc.append(int(part[1:-1]))
        elif part:
            loc.append(part)
    return tuple(loc)
