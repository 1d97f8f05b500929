"""The AKS cluster profile's tables (pure: no SDK): node pools, address ranges, the cluster's names.

VM sizes come from `infra.targets.azure.sizes` (`NODE_VM_SIZES`, `GPU_VM_SIZES`). AKS node pool names are at most
12 lowercase letters and digits (`names.RULES['node_pool']`), so the pools are named by role: `system`, `cpu` or
`gpu`, and their Spot twin `cpuspot` or `gpuspot`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from infra.spec import PlatformSpec
from infra.targets.azure.sizes import GPU_VM_SIZES, NODE_VM_SIZES
from infra.targets.cluster import system_size_class

#: The node label every pool carries (its role), and the taint that keeps all but training pods off training pools.
POOL_LABEL = "shipyard.io/pool"
TRAINING_TAINT = (POOL_LABEL, "training")
#: AKS labels and taints spot nodes with this (it adds it itself; declared so the plan shows it); the Kubernetes
#: target's training pods tolerate it.
SPOT_TAINT = ("kubernetes.azure.com/scalesetpriority", "spot")
#: The taint of GPU nodes; the Kubernetes target's GPU pods tolerate it.
GPU_TAINT = ("nvidia.com/gpu", "present")
#: Nodes of the system pool (the tracking server, serving, monitoring, AKS's own pods): dev keeps one.
SYSTEM_NODES = {"dev": (1, 3), "staging": (2, 4), "prod": (3, 6)}
#: Pod and Service ranges of the cluster (Azure CNI overlay: pods take no VNet addresses; neither range may
#: overlap the VNet), and the cluster DNS address inside the Service range.
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.245.0.0/16"
DNS_SERVICE_IP = "10.245.0.10"
#: The Kubernetes minor version the cluster runs (AKS's `stable` upgrade channel keeps it current; the workloads
#: are validated against it).
KUBERNETES_VERSION = "1.33.0"


@dataclass(frozen=True)
class PoolPlan:
    """One AKS agent pool: its VM size, node bounds for the cluster autoscaler, and what runs there."""

    name: str
    role: str
    vm_size: str
    min_nodes: int
    max_nodes: int
    spot: bool = False
    gpus: int = 0
    taints: tuple[tuple[str, str], ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        """The node labels pods select the pool by."""
        return {POOL_LABEL: self.role}

    @property
    def node_taints(self) -> list[str]:
        """The taints as AKS takes them (`key=value:NoSchedule`)."""
        return [f"{key}={value}:NoSchedule" for key, value in self.taints]

    @property
    def system(self) -> bool:
        """Whether this is the System-mode pool (AKS's own pods need one)."""
        return self.role == "system"


def pool_plans(spec: PlatformSpec) -> list[PoolPlan]:
    """The cluster's pools: the system pool (everything but training); the training pool (`cpu`, or `gpu`
    tainted for GPUs when the size class is 'gpu') between `training.min_nodes` and `max_nodes`, from zero when
    min_nodes is 0; with `training.spot` its Spot twin, from zero."""
    low, high = SYSTEM_NODES[spec.environment]
    training = spec.training
    gpu = training.size == "gpu"
    kind = "gpu" if gpu else "cpu"
    taints = (TRAINING_TAINT, *((GPU_TAINT,) if gpu else ()))
    vm_size = training_vm_size(spec)
    pools = [PoolPlan("system", "system", system_vm_size(spec), low, high),
             PoolPlan(kind, "training", vm_size, training.min_nodes, training.max_nodes, gpus=training.gpu_count,
                      taints=taints)]
    if training.spot:
        pools.append(PoolPlan(f"{kind}spot", "training", vm_size, 0, training.max_nodes, spot=True,
                              gpus=training.gpu_count, taints=(*taints, SPOT_TAINT)))
    return pools


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
