"""The Azure size table: one row per platform size class, every Azure capacity the spec's sizes map onto.

Container Apps on the Consumption profile give a replica at most 4 vCPU and 8 GiB, in fixed cpu/memory pairs
(0.5 vCPU per GiB); `gpu` runs on a serverless GPU workload profile (`azure.gpu_workload_profile`).
PostgreSQL Flexible Server takes a tier and a SKU name; its storage comes in fixed sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.spec import SizeClass


@dataclass(frozen=True)
class AzureSize:
    """What one size class means on Azure, for every workload."""

    #: Container Apps replica: vCPU and memory (a pair the Consumption profile accepts; `gpu` replicas take
    #: their GPU profile's instead, `GPU_PROFILES`).
    cpu: float
    memory: str
    #: PostgreSQL Flexible Server tier and SKU of the registry database.
    database_tier: str
    database_sku: str
    #: Whether replicas run on the serverless GPU workload profile.
    gpu: bool = False


#: Size class -> Azure capacities. `gpu` keeps the CPU-only database at `large`'s SKU.
SIZES: dict[SizeClass, AzureSize] = {
    "small": AzureSize(1.0, "2Gi", "Burstable", "Standard_B1ms"),
    "medium": AzureSize(2.0, "4Gi", "GeneralPurpose", "Standard_D2ds_v5"),
    "large": AzureSize(4.0, "8Gi", "GeneralPurpose", "Standard_D4ds_v5"),
    "gpu": AzureSize(4.0, "8Gi", "GeneralPurpose", "Standard_D4ds_v5", gpu=True),
}
#: The Consumption profile's name, and its limits per replica.
CONSUMPTION = "Consumption"
#: A replica of each serverless GPU profile: its one GPU's vCPU and memory.
GPU_PROFILES: dict[str, tuple[float, str]] = {"Consumption-GPU-NC8as-T4": (8.0, "56Gi"),
                                              "Consumption-GPU-NC24-A100": (24.0, "220Gi")}
#: GPUs per replica on every serverless GPU profile.
GPUS_PER_REPLICA = 1
#: Regions offering serverless GPUs in Container Apps (Microsoft's list of 2026-01; extend it here).
GPU_REGIONS = frozenset({"westus3", "australiaeast", "swedencentral"})
#: The storage sizes PostgreSQL Flexible Server offers, in GiB.
POSTGRES_STORAGE_GB = (32, 64, 128, 256, 512, 1024, 2048, 4096)
#: PostgreSQL Flexible Server keeps backups between these many days.
BACKUP_DAYS = (7, 35)


def size(size_class: SizeClass) -> AzureSize:
    """The Azure row of a size class."""
    return SIZES[size_class]


def replica(size_class: SizeClass, gpu_profile: str) -> tuple[float, str, str]:
    """(vCPU, memory, workload profile name) of a Container Apps replica of this size."""
    row = SIZES[size_class]
    if row.gpu:
        cpu, memory = GPU_PROFILES[gpu_profile]
        return cpu, memory, "gpu"
    return row.cpu, row.memory, CONSUMPTION


def postgres_storage_gb(requested: int) -> int:
    """The smallest PostgreSQL storage size that holds `requested` GiB."""
    return next(gb for gb in POSTGRES_STORAGE_GB if gb >= requested)


def backup_days(requested: int) -> int:
    """The spec's backup retention within what PostgreSQL Flexible Server accepts."""
    return min(max(requested, BACKUP_DAYS[0]), BACKUP_DAYS[1])


#: AKS node VM size per size class (the AKS cluster profile): the Kubernetes target's requests and limits of
#: that class fit with room for the node's own daemons (`infra/targets/kubernetes/sizes.py`); every size takes
#: Premium SSD (the `s`), which the `managed-csi-premium` volumes need.
NODE_VM_SIZES: dict[SizeClass, str] = {
    "small": "Standard_D2s_v5",
    "medium": "Standard_D4s_v5",
    "large": "Standard_D8s_v5",
}
#: AKS GPU nodes: NVIDIA T4 on NCasT4_v3 VMs, by GPUs per node (the family carries 1 or 4).
GPU_VM_SIZES: dict[int, str] = {1: "Standard_NC8as_T4_v3", 4: "Standard_NC64as_T4_v3"}
