"""How a stack's spec is put together: environment defaults, then the shared spec, then the stack overlay.

Mappings merge key by key and other values replace, except `models`: its entries merge by `name`, so a
fork that changes one model's setting restates only that setting. An overlay entry with a new name adds a
model; `{name: X, remove: true}` removes the shared spec's model X (explicitly: leaving a model out of the
overlay keeps it). `Origins` remembers where each merged model came from, so a problem found on the merged
spec is reported at the index the user wrote it at, in the file they wrote it in.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from infra.problems import Problem, format_path
from infra.spec import ENVIRONMENT_DEFAULTS, MODEL_ENVIRONMENT_DEFAULTS

#: The overlay marker that removes a shared model.
REMOVE = "remove"


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`overlay` on top of `base`: mappings merge key by key; any other value replaces. Inputs are untouched."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class Origins:
    """Where each merged model came from: its index in the shared spec's and in the overlay's `models`."""

    shared: list[int | None] = field(default_factory=list)
    overlay: list[int | None] = field(default_factory=list)

    def in_shared(self, loc: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """`loc` (a path in the merged spec) as a path in the shared spec, or None if it is not from there."""
        return self._translate(loc, self.shared)

    def in_overlay(self, loc: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """`loc` as a path in the stack overlay, or None if it is not from there."""
        return self._translate(loc, self.overlay)

    @staticmethod
    def _translate(loc: tuple[Any, ...], indexes: list[int | None]) -> tuple[Any, ...] | None:
        if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
            if loc[1] >= len(indexes) or indexes[loc[1]] is None:
                return None
            return ("models", indexes[loc[1]], *loc[2:])
        return loc


def merge_models(shared: Any, overlay: Any) -> tuple[Any, Origins, list[Problem]]:
    """The shared spec's models with the overlay's merged in by name (see the module docstring)."""
    origins = Origins()
    if not isinstance(overlay, list) or not isinstance(shared, list):
        items = overlay if isinstance(overlay, list) else shared
        count = len(items) if isinstance(items, list) else 0
        index_list = list(range(count))
        origins = Origins(shared=[None] * count if isinstance(overlay, list) else index_list,
                          overlay=index_list if isinstance(overlay, list) else [None] * count)
        return copy.deepcopy(items), origins, []
    problems: list[Problem] = []
    merged: list[Any] = []
    by_name: dict[Any, int] = {}
    for index, model in enumerate(shared):
        by_name[model.get("name") if isinstance(model, dict) else None] = len(merged)
        merged.append(copy.deepcopy(model))
        origins.shared.append(index)
        origins.overlay.append(None)
    removed: set[int] = set()
    for index, item in enumerate(overlay):
        entry = dict(item) if isinstance(item, dict) else item
        name = entry.get("name") if isinstance(entry, dict) else None
        if name is None:
            problems.append(Problem.at(f"models[{index}].name", "is required: overlay models merge with the shared "
                                                                "spec's models by name"))
            continue
        at = by_name.get(name)
        if entry.get(REMOVE, False) not in (True, False):
            problems.append(Problem.at(f"models[{index}].{REMOVE}",
                                       "must be true (remove the shared model) or left out"))
            continue
        if entry.pop(REMOVE, False) is True:
            if at is None:
                problems.append(Problem.at(f"models[{index}].{REMOVE}", f"no model {name!r} in the shared spec "
                                                                        "to remove"))
            else:
                removed.add(at)
            continue
        if at is None:
            by_name[name] = len(merged)
            merged.append(copy.deepcopy(entry))
            origins.shared.append(None)
            origins.overlay.append(index)
        else:
            merged[at] = deep_merge(merged[at], entry) if isinstance(merged[at], dict) else copy.deepcopy(entry)
            origins.overlay[at] = index
    keep = [i for i in range(len(merged)) if i not in removed]
    kept = Origins(shared=[origins.shared[i] for i in keep], overlay=[origins.overlay[i] for i in keep])
    return [merged[i] for i in keep], kept, problems


def _annotate_secrets(node: Any, loc: tuple[Any, ...] = ()) -> Any:
    """Record in each `{secure: ...}` / `{ref: ...}` mapping the key path that holds it."""
    if isinstance(node, dict):
        if node.keys() and set(node) <= {"secure", "ref"}:
            return {**node, "source": format_path(loc)}
        return {k: _annotate_secrets(v, (*loc, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_annotate_secrets(v, (*loc, i)) for i, v in enumerate(node)]
    return node


def written(shared: dict[str, Any], overlay: dict[str, Any]) -> tuple[dict[str, Any], Origins, list[Problem]]:
    """The stack overlay on the shared spec, models by name: what the user wrote, without any default."""
    merged = deep_merge(shared, {k: v for k, v in overlay.items() if k != "models"})
    origins = Origins()
    problems: list[Problem] = []
    if "models" in overlay or "models" in shared:
        merged["models"], origins, problems = merge_models(shared.get("models"), overlay.get("models"))
    return merged, origins, problems


def with_defaults(shared: dict[str, Any], overlay: dict[str, Any]) -> tuple[dict[str, Any], Origins, list[Problem]]:
    """Environment defaults, then the shared spec, then the stack overlay; each model on its own defaults.

    Each secret (`{secure: ...}` / `{ref: ...}`) records the key path that holds it. Also returns where each
    model came from, and the overlay's problems (a model without a name, a removal of an unknown model).
    """
    merged, origins, problems = written(shared, overlay)
    environment = merged.get("environment", "dev")
    if environment in ENVIRONMENT_DEFAULTS:
        merged = deep_merge(ENVIRONMENT_DEFAULTS[environment], merged)
        model_defaults = MODEL_ENVIRONMENT_DEFAULTS[environment]
        if isinstance(merged.get("models"), list):
            merged["models"] = [
                deep_merge(model_defaults, m) if isinstance(m, dict) else m for m in merged["models"]
            ]
    return _annotate_secrets(merged), origins, problems
