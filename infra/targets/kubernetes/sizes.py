"""Size classes on Kubernetes: the spec's `small`/`medium`/`large`/`gpu` as container requests and limits.
Services that never use a GPU read `gpu` through `CPU_ONLY` (`cpu_only`); training asks for GPUs.

Adding a size is one line in `SIZES`. Storage that the spec does not size is sized in `STORAGE_GB`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_kubernetes.core.v1 import ResourceRequirementsArgs

#: The extended resource a GPU node advertises (NVIDIA's device plugin).
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Size:
    """Requests and limits of one size class; `gpus` is the default GPU count of the class."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str
    gpus: int = 0


#: Size class -> container resources: limits at twice the requests, so a burst is allowed and bounded.
SIZES: dict[str, Size] = {
    "small": Size("250m", "512Mi", "1", "1Gi"),
    "medium": Size("1", "2Gi", "2", "4Gi"),
    "large": Size("2", "8Gi", "4", "16Gi"),
    "gpu": Size("4", "16Gi", "8", "32Gi", gpus=1),
}

#: Size class -> the class a service that never uses a GPU (PostgreSQL, MLflow, the model server) runs at:
#: `gpu` there means "the biggest", as on AWS (RDS, Fargate); only training requests GPUs.
CPU_ONLY: dict[str, str] = {"gpu": "large"}

#: Sidecar-sized resources for helpers that only serve a file or install a wheel.
TINY = Size("50m", "64Mi", "500m", "256Mi")

#: Volumes whose size the spec does not give, in GiB (the database's comes from `registry.database.storage_gb`).
STORAGE_GB: dict[str, int] = {
    "artifacts": 20,
    "data": 10,
}


def resource_values(size: Size, gpus: int | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(requests, limits) of a size class as plain maps; `gpus` overrides the class's GPU count."""
    requests = {"cpu": size.cpu_request, "memory": size.memory_request}
    limits = {"cpu": size.cpu_limit, "memory": size.memory_limit}
    count = size.gpus if gpus is None else gpus
    if count:
        requests[GPU_RESOURCE] = str(count)
        limits[GPU_RESOURCE] = str(count)
    return requests, limits


def resources(size_class: str | Size, gpus: int | None = None) -> ResourceRequirementsArgs:
    """Container resources for a size class name (or a `Size`), with GPUs when the class or `gpus` asks."""
    size = SIZES[size_class] if isinstance(size_class, str) else size_class
    requests, limits = resource_values(size, gpus)
    return ResourceRequirementsArgs(requests=requests, limits=limits)


def cpu_only(size_class: str) -> Size:
    """The size of a CPU-only service for a spec's size class (`CPU_ONLY`): never a GPU request."""
    return SIZES[CPU_ONLY.get(size_class, size_class)]
