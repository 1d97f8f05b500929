"""The AKS cluster profile's tables (pure: no SDK): node pools, address ranges, the cluster's names.

VM sizes come from `infra.targets.azure.sizes` (`NODE_VM_SIZES`, `GPU_VM_SIZES`). AKS node pool names are at most
12 lowercase letters and digits (`names.RULES['node_pool']`), so the pools are named by role: `system`, `cpu` or
`gpu`, and their Spot twin `cpuspot` or `gpuspot`.
"""

from __future__ import annotations

import ipaddress

from infra.spec import PlatformSpec
from infra.targets.azure.sizes import GPU_VM_SIZES, NODE_VM_SIZES
from infra.targets.cluster import PoolPlan, system_size_class
from infra.targets.cluster import pool_plans as cluster_pools

#: AKS labels and taints spot nodes with this (it adds it itself; declared so the plan shows it); the Kubernetes
#: target's training pods tolerate it.
SPOT_TAINT = ("kubernetes.azure.com/scalesetpriority", "spot")
#: Pod and Service ranges of the cluster (Azure CNI overlay: pods take no VNet addresses; neither range may
#: overlap the VNet), and the cluster DNS address inside the Service range.
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.245.0.0/16"
DNS_SERVICE_IP = "10.245.0.10"
#: The Kubernetes minor version the cluster runs (AKS's `stable` upgrade channel keeps it current; the workloads
#: are validated against it).
KUBERNETES_VERSION = "1.33.0"


def pool_plans(spec: PlatformSpec) -> list[PoolPlan]:
    """The cluster's pools (`infra.targets.cluster.pool_plans`) on Azure VM sizes, named by role within AKS's 12
    characters: `system`, `cpu` or `gpu`, and the Spot twin `cpuspot` or `gpuspot` (AKS's spot taint)."""
    kind = "gpu" if spec.training.size == "gpu" else "cpu"
    return cluster_pools(spec, system_machine=system_vm_size(spec), training_machine=training_vm_size(spec),
                         names=(kind, f"{kind}spot"), spot_taint=SPOT_TAINT)


def node_taints(plan: PoolPlan) -> list[str]:
    """A pool's taints as AKS takes them (`key=value:NoSchedule`)."""
    return [f"{key}={value}:NoSchedule" for key, value in plan.taints]


def training_vm_size(spec: PlatformSpec) -> str:
    """The training pools' VM size: the size class's, or the T4 VM carrying `training.gpu_count` GPUs."""
    training = spec.training
    return GPU_VM_SIZES[training.gpu_count] if training.size == "gpu" else NODE_VM_SIZES[training.size]


def system_vm_size(spec: PlatformSpec) -> str:
    """The system pool's VM size: large enough for the biggest of the tracking server and the endpoints."""
    return NODE_VM_SIZES[system_size_class(spec)]


def range_overlaps(vnet_cidr: str) -> list[str]:
    """The cluster's pod and Service ranges that overlap the VNet's address space (AKS refuses them)."""
    network = ipaddress.ip_network(vnet_cidr)
    return [cidr for cidr in (POD_CIDR, SERVICE_CIDR) if network.overlaps(ipaddress.ip_network(cidr))]
