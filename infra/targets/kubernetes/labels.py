"""`app.kubernetes.io/*` labels: who an object belongs to, and the selectors that find a workload's pods."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MANAGED_BY = "pulumi"
_MAX = 63
_INVALID = re.compile(r"[^A-Za-z0-9._-]")


def label_value(value: str) -> str:
    """`value` as a valid label value: [A-Za-z0-9._-], at most 63 characters, alphanumeric at both ends.

    A value that had to be shortened keeps a hash of the original, so two long values stay distinct.
    """
    cleaned = _INVALID.sub("-", value).strip("-._")
    if len(cleaned) > _MAX:
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        cleaned = cleaned[: _MAX - 9].rstrip("-._") + "-" + digest
    return cleaned


@dataclass(frozen=True)
class Workload:
    """The identity of one workload: its labels, and the subset that selects its pods.

    - `name`: the application (`mlflow`, `postgresql`, `serving`, ...);
    - `instance`: this installation of it (`<prefix>` or `<prefix>-<model>`);
    - `component`: its role in the platform (`registry`, `database`, `training`, `serving`, `monitoring`);
    - `part_of`: the platform's name; `version`: what it runs.
    """

    name: str
    instance: str
    component: str
    part_of: str
    version: str

    @property
    def labels(self) -> dict[str, str]:
        """Every `app.kubernetes.io/*` label of the workload's objects."""
        return {
            "app.kubernetes.io/name": label_value(self.name),
            "app.kubernetes.io/instance": label_value(self.instance),
            "app.kubernetes.io/component": label_value(self.component),
            "app.kubernetes.io/part-of": label_value(self.part_of),
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "app.kubernetes.io/version": label_value(self.version),
        }

    @property
    def selector(self) -> dict[str, str]:
        """The labels that select this workload's pods: stable across versions (a selector is immutable)."""
        return {
            "app.kubernetes.io/name": label_value(self.name),
            "app.kubernetes.io/instance": label_value(self.instance),
        }


def component_selector(part_of: str, component: str) -> dict[str, str]:
    """Labels selecting every pod of one component of the platform (e.g. all serving pods)."""
    return {"app.kubernetes.io/part-of": label_value(part_of), "app.kubernetes.io/component": label_value(component)}
