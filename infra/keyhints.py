"""Suggestions for a key the spec does not know: a near spelling among its siblings, or the place it belongs.

A key that exists elsewhere in the spec (`min_replicas` written under `models[0]` instead of
`models[0].serving`) is pointed at where it belongs; otherwise a close spelling among the keys allowed at
that level is offered (`max_replica` -> `max_replicas`); otherwise the allowed keys are listed.
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any

from pydantic import BaseModel

from infra.spec import PlatformSpec


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The spec class inside a field's annotation (`X | None`, `list[X]`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = model_of(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The spec class that validates the mapping at `loc` (list indexes skipped)."""
    model: Any = PlatformSpec
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = model_of(info.annotation)
    return model


@cache
def key_index() -> dict[str, tuple[tuple[str | int, ...], ...]]:
    """Every key of the spec -> the paths where it is allowed (`-1` stands for any list index)."""
    index: dict[str, list[tuple[str | int, ...]]] = {}

    def walk(model: type[BaseModel], prefix: tuple[str | int, ...]) -> None:
        for name, info in model.model_fields.items():
            if name == "source":  # filled in by the loader, never written
                continue
            index.setdefault(name, []).append((*prefix, name))
            child = model_of(info.annotation)
            if child is not None and child is not model:
                walk(child, (*prefix, name, -1) if _is_list(info.annotation) else (*prefix, name))

    walk(PlatformSpec, ())
    return {name: tuple(paths) for name, paths in index.items()}


def _concrete(path: tuple[str | int, ...], loc: tuple[Any, ...]) -> str:
    """`path` written with the list indexes of `loc` where the two share a prefix ('models[0].serving...')."""
    out = ""
    for i, part in enumerate(path):
        if part == -1:
            index = loc[i] if i < len(loc) and isinstance(loc[i], int) else None
            out += f"[{index}]" if index is not None else "[]"
        else:
            out += f".{part}" if out else str(part)
    return out


def unknown_key_message(loc: tuple[Any, ...]) -> str:
    """What to say about the unknown key at `loc` (its last part)."""
    key = str(loc[-1])
    parent = model_at(loc[:-1])
    names = sorted(n for n in (parent.model_fields if parent else {}) if n != "source")
    elsewhere = key_index().get(key, ())
    if elsewhere:
        places = " or ".join(repr(_concrete(p, loc)) for p in elsewhere)
        return f"unknown key here; {key!r} belongs at {places}"
    hint = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if hint:
        return f"unknown key; did you mean {hint[0]!r}?"
    far = difflib.get_close_matches(key, list(key_index()), n=1, cutoff=0.75)
    if far:
        places = " or ".join(repr(_concrete(p, loc)) for p in key_index()[far[0]])
        return f"unknown key here; did you mean {far[0]!r}, at {places}?"
    return f"unknown key; allowed here: {', '.join(names)}"
