"""The GCP size table: one row per platform size class (pure: no SDK).

Cloud Run takes CPU and memory as strings (`"2"`, `"4Gi"`); a GPU needs at least 4 CPUs and 16 GiB and
no CPU throttling. Cloud SQL takes a tier. Adding a size is one row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.spec import SizeClass


@dataclass(frozen=True)
class GcpSize:
    """What one size class means on GCP, for every workload."""

    #: Cloud Run CPU and memory of a job task or a service instance.
    cpu: str
    memory: str
    #: Cloud SQL machine tier of the registry database.
    sql_tier: str


#: Size class -> GCP capacities. `gpu` gets the smallest shape Cloud Run allows with a GPU; Cloud SQL stays at
#: `large`'s tier (the database has no GPU).
SIZES: dict[SizeClass, GcpSize] = {
    "small": GcpSize("1", "2Gi", "db-custom-1-3840"),
    "medium": GcpSize("2", "4Gi", "db-custom-2-7680"),
    "large": GcpSize("4", "16Gi", "db-custom-4-15360"),
    "gpu": GcpSize("4", "16Gi", "db-custom-4-15360"),
}

#: The one GPU Cloud Run offers, one per instance or task.
GPU_ACCELERATOR = "nvidia-l4"
MAX_GPUS = 1
#: Regions where Cloud Run offers GPUs (services and jobs), per Google's Cloud Run GPU page (2026-11).
GPU_REGIONS = frozenset({"us-central1", "us-east4", "europe-west1", "europe-west4", "asia-southeast1",
                         "asia-south1"})


def size(size_class: SizeClass) -> GcpSize:
    """The GCP row of a size class."""
    return SIZES[size_class]
