"""Checks the plan tests share: stack discovery per target and the untranslated-keys scan."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from infra.stackfile import PROJECT, SHARED_SPEC
from infra.targets import TARGETS

ROOT = Path(__file__).resolve().parents[2]

#: Fields whose value is a map of user data: its keys are names chosen by people or by other systems
#: (tag keys, label keys, file names, environment variable names, parameter names), not SDK property
#: names, so a '_' in them says nothing about translation. Everywhere else a key is an SDK property
#: name, which the provider SDKs translate from snake_case (Python) to camelCase (wire) - a snake_case
#: key that survives there was never translated: a typo in a plain dict, or a field the SDK doesn't have.
MAP_FIELDS = frozenset({
    "tags", "tagsAll", "defaultTags",                   # cloud tags
    "userLabels", "defaultLabels",                      # GCP labels (`labels` below is shared with Kubernetes)
    "labels", "annotations", "matchLabels", "selector", "nodeSelector",  # Kubernetes metadata and selectors
    "data", "stringData", "binaryData",                 # ConfigMap / Secret payloads (file names as keys)
    "environment", "variables",                         # environment variable maps (SageMaker, Lambda)
    "parameters", "hyperParameters", "dimensions",      # StorageClass / pipeline parameters, metric dimensions
    "limits", "requests",                               # Kubernetes resource quantities (e.g. nvidia.com/gpu)
})


#: Keys the SDK itself sets: a dynamic resource's serialized provider (infra/targets/azure/upload.py).
SDK_KEYS = frozenset({"__provider"})


def untranslated_keys(node: Any, path: str = "") -> list[str]:
    """Paths of snake_case keys (a '_' and not ALL_CAPS) outside map-typed fields."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SDK_KEYS:
                continue
            here = f"{path}.{key}" if path else str(key)
            if "_" in key and not key.isupper():
                found.append(here)
            if key not in MAP_FIELDS:
                found += untranslated_keys(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += untranslated_keys(value, f"{path}[{i}]")
    return found


def stack_target(project: Path, stack_file: Path) -> str | None:
    """The target a stack file names (or the shared spec does), read without validating anything."""
    key = f"{PROJECT}:target"
    config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    if key in config:
        return config[key]
    shared = project / "stacks" / SHARED_SPEC
    return (yaml.safe_load(shared.read_text()) or {}).get("target") if shared.is_file() else None


def stacks_by_target(project: Path) -> dict[str, list[str]]:
    """Every stack of the project (stacks/Pulumi.<stack>.yaml), grouped by the target it names."""
    found: dict[str, list[str]] = {}
    for path in sorted((project / "stacks").glob("Pulumi.*.yaml")):
        stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        found.setdefault(str(stack_target(project, path)), []).append(stack)
    return found


def target_module(target: str) -> ModuleType:
    """The target's module (every registered target must import: a missing one fails the test)."""
    return importlib.import_module(TARGETS[target])
