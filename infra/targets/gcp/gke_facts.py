"""The GKE cluster profile's tables (pure: no SDK): machines per size class, address ranges, node pools.

Adding a size is one line in `MACHINES`; a GPU count one line in `GPU_MACHINES`.
"""

from __future__ import annotations

import ipaddress

from infra.spec import PlatformSpec, SizeClass
from infra.targets.cluster import PoolPlan, system_size_class
from infra.targets.cluster import pool_plans as cluster_pools

#: Node machine per size class: the Kubernetes target's requests and limits of that class fit with room for the
#: node's own daemons (`infra/targets/kubernetes/sizes.py`).
MACHINES: dict[SizeClass, str] = {
    "small": "e2-standard-2",
    "medium": "e2-standard-4",
    "large": "n2-standard-8",
}
#: GPU nodes: NVIDIA L4 on G2 machines, by GPUs per node (G2 machines carry 1, 2, 4 or 8).
GPU_ACCELERATOR = "nvidia-l4"
GPU_MACHINES: dict[int, str] = {1: "g2-standard-8", 2: "g2-standard-24", 4: "g2-standard-48", 8: "g2-standard-96"}

#: Secondary ranges of the workloads' subnet (VPC-native cluster) and the control plane's private range.
POD_RANGE = ("pods", "10.64.0.0/14")
SERVICE_RANGE = ("services", "10.68.0.0/20")
CONTROL_PLANE_RANGE = "172.16.0.32/28"

#: GKE labels and taints spot nodes with this; the Kubernetes target's training pods tolerate it.
SPOT_TAINT = ("cloud.google.com/gke-spot", "true")
#: The Kubernetes minor version the release channel runs (what the workloads are validated against).
KUBERNETES_VERSION = "1.33.0"


def pool_plans(spec: PlatformSpec) -> list[PoolPlan]:
    """The cluster's node pools (`infra.targets.cluster.pool_plans`) on GKE machines; spot nodes carry GKE's taint."""
    return cluster_pools(spec, system_machine=system_machine(spec), training_machine=training_machine(spec),
                         spot_taint=SPOT_TAINT)


def training_machine(spec: PlatformSpec) -> str:
    """The training pools' machine: the size class's, or the G2 machine with `training.gpu_count` L4s."""
    training = spec.training
    return GPU_MACHINES[training.gpu_count] if training.size == "gpu" else MACHINES[training.size]


def system_machine(spec: PlatformSpec) -> str:
    """The system pool's machine: large enough for the biggest of the tracking server and the endpoints."""
    return MACHINES[system_size_class(spec)]


def range_overlaps(subnet: str) -> list[str]:
    """The cluster's fixed ranges that overlap the workloads' subnet `subnet` (GKE refuses overlapping ranges)."""
    network = ipaddress.ip_network(subnet)
    return [cidr for cidr in (POD_RANGE[1], SERVICE_RANGE[1], CONTROL_PLANE_RANGE)
            if network.overlaps(ipaddress.ip_network(cidr))]
