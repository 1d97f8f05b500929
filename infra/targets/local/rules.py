"""What the local target refuses (`check`: nothing it cannot run) and what it does not honour (`ignored`).

The local target runs one process per role on this machine: sizes, replicas, rollouts, networks, cloud
databases and tags mean nothing there. Each such setting that differs from the default is named, with
what runs instead.
"""

from __future__ import annotations

from infra.problems import Notice, Problem
from infra.spec import PlatformSpec
from infra.targets.baseline import changed

_ONE_MACHINE = "the local target runs one process per role on this machine"

#: Platform-level keys the local target does not use -> what happens instead.
_PLATFORM: dict[str, str] = {
    "tags": "not used: no cloud resource carries tags",
    "runtime_image": "not used: no image runs; the wheel is installed into a venv",
    "protect": "not used: the state directory is kept unless `shipyard down --purge`",
    "networking.private": "not used: every server listens on loopback only",
    "networking.allowed_cidrs": "not used: every server listens on loopback only",
    "networking.existing_network": "not used: every server listens on loopback only",
    "training.size": "not used: training runs as one local process",
    "training.min_nodes": "not used: training runs as one local process",
    "training.max_nodes": "not used: training runs as one local process",
    "training.gpu_count": "not used: training runs as one local process",
    "training.spot": "not used: training runs as one local process",
    "training.schedule": ("not used: there is no training schedule locally; retraining runs when the monitor "
                          "finds drift, or with `python -m pipelines retrain`"),
    "registry.server_size": "not used: " + _ONE_MACHINE,
    **{f"registry.database.{key}": "not used: the local registry keeps its backend in SQLite under the state "
                                   "directory"
       for key in ("size", "storage_gb", "high_availability", "backup_retention_days", "external_url")},
    **{f"registry.artifacts.{key}": "not used: artifacts live in a directory under the state directory"
       for key in ("versioning", "noncurrent_version_retention_days", "s3_endpoint", "bucket", "s3_credentials")},
}

#: Per-model keys (under `models[i].`) the local target does not use -> what happens instead.
_MODEL: dict[str, str] = {
    **{f"serving.{key}": "not used: one server process per model, hot-swapped to the new champion without "
                         "dropping requests"
       for key in ("min_replicas", "max_replicas", "target_cpu_utilization", "size", "rollout")},
    "serving.public": "not used: the server listens on loopback only",
    "serving.auth": ("not configured by the local target: its servers require an API key only when "
                     "$SHIPYARD_API_KEY is set for `shipyard up`"),
    "monitoring.alerts": "not delivered locally; drift and quality results are in `shipyard status` and the "
                         "HTML reports",
}


def check(spec: PlatformSpec) -> list[Problem]:
    """The local target builds every valid spec (what it cannot honour is only a notice)."""
    return []


def ignored(spec: PlatformSpec) -> list[Notice]:
    """Every setting that differs from the default and that the local target does not honour."""
    notices = [Notice(key, _PLATFORM[key]) for key in changed(spec, *_PLATFORM)]
    for i in range(len(spec.models)):
        keys = [f"models[{i}].{key}" for key in _MODEL]
        notices += [Notice(key, _MODEL[key.split(".", 1)[1]]) for key in changed(spec, *keys)]
    return notices
