"""The cluster profile of the cloud targets (`<cloud>.compute: kubernetes`): the rules it shares (pure, no SDK).

On the cluster profile a cloud target creates a managed Kubernetes cluster (EKS, GKE, AKS) and builds the
Kubernetes target's workloads on it, unchanged but for the hooks of `infra.targets.kubernetes.profile`. So
what the Kubernetes target refuses and does not honour holds there too, with three corrections:

- settings the cloud side honours (the region, the network, the node pools' bounds from `training.min_nodes` /
  `max_nodes`, the managed database's size, high availability and backups, the object store's versioning and
  retention, tags on cloud resources) are not reported as ignored;
- the `kubernetes` section is not the user's (the target's table gives the storage classes), so nothing is
  reported at a `kubernetes.*` key;
- the artifacts live in the cloud's object store: the S3-endpoint settings are not used.

`workload_spec` is the spec the Kubernetes target's `build` and rules see on a cloud's cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.problems import Notice, Problem
from infra.spec import KubernetesSpec, PlatformSpec, SizeClass
from infra.targets.baseline import changed
from infra.targets.kubernetes import rules as kubernetes_rules


@dataclass(frozen=True)
class ClusterFacts:
    """What one cloud's managed cluster gives the Kubernetes workloads."""

    #: The cluster service's name, for messages.
    service: str
    #: The object store the artifacts live in, for messages.
    store: str
    #: The storage class of the volumes (ReadWriteOnce), one the cluster has from the start.
    storage_class: str
    #: The ReadWriteMany storage class of the shared data volume outside dev (None: ReadWriteOnce everywhere).
    shared_storage_class: str | None


#: Per cloud: the cluster and its storage classes (GKE's `premium-rwo` is the PD CSI driver's SSD class and
#: `standard-rwx` the Filestore CSI driver's, which the stack enables; EKS has no gp3 class of its own, so the
#: EKS profile declares `shipyard-gp3`: encrypted gp3 volumes of the EBS CSI driver, which the stack installs).
FACTS: dict[str, ClusterFacts] = {
    "gcp": ClusterFacts("GKE", "GCS bucket", "premium-rwo", "standard-rwx"),
    "aws": ClusterFacts("EKS", "S3 bucket", "shipyard-gp3", None),
    "azure": ClusterFacts("AKS", "blob container", "managed-csi-premium", "azurefile-csi-premium"),
}
#: Key paths (and prefixes ending in '.') the cloud side of the cluster profile honours.
_HONOURED = ("region", "tags", "networking.", "training.min_nodes", "training.max_nodes", "registry.database.",
             "registry.artifacts.versioning", "registry.artifacts.noncurrent_version_retention_days", "kubernetes.")
_S3_KEYS = ("registry.artifacts.s3_endpoint", "registry.artifacts.bucket", "registry.artifacts.s3_credentials")


#: The node label every pool carries (its role), and the taint that keeps all but training pods off training pools.
POOL_LABEL = "shipyard.io/pool"
TRAINING_TAINT = (POOL_LABEL, "training")
#: The taint of GPU nodes; the Kubernetes target's GPU pods tolerate it.
GPU_TAINT = ("nvidia.com/gpu", "present")
#: Nodes of the system pool (tracking server, serving, monitoring, the cloud's own pods): dev keeps one.
SYSTEM_NODES = {"dev": (1, 3), "staging": (2, 4), "prod": (3, 6)}
#: The Kubernetes target's components whose pods run on the system pool (training runs on the training pools).
SYSTEM_COMPONENTS = ("registry", "serving", "monitoring", "database")


@dataclass(frozen=True)
class PoolPlan:
    """One node pool (node group, agent pool): its machine, node bounds, capacity and what runs there."""

    name: str
    role: str
    machine: str
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
    def system(self) -> bool:
        """Whether this is the system pool."""
        return self.role == "system"


def pool_plans(spec: PlatformSpec, *, system_machine: str, training_machine: str,
               names: tuple[str, str] = ("training", "training-spot"),
               spot_taint: tuple[str, str] | None = None) -> list[PoolPlan]:
    """A cluster's pools, on every cloud: the system pool (everything but training) between the environment's
    SYSTEM_NODES; the training pool (`names[0]`) on `training_machine` between `training.min_nodes` and
    `max_nodes`, tainted for training (and for GPUs when the size class is 'gpu'), from zero when min_nodes is 0;
    with `training.spot` its spot twin (`names[1]`, also tainted with the cloud's `spot_taint`), from zero."""
    low, high = SYSTEM_NODES[spec.environment]
    training = spec.training
    taints = (TRAINING_TAINT, *((GPU_TAINT,) if training.size == "gpu" else ()))
    pools = [PoolPlan("system", "system", system_machine, low, high),
             PoolPlan(names[0], "training", training_machine, training.min_nodes, training.max_nodes,
                      gpus=training.gpu_count, taints=taints)]
    if training.spot:
        pools.append(PoolPlan(names[1], "training", training_machine, 0, training.max_nodes, spot=True,
                              gpus=training.gpu_count, taints=(*taints, *((spot_taint,) if spot_taint else ()))))
    return pools


def on_cluster(spec: PlatformSpec) -> bool:
    """Whether `spec` asks a cloud target for its cluster profile."""
    return spec.compute == "kubernetes"


def system_size_class(spec: PlatformSpec) -> SizeClass:
    """The size class of the system pool's nodes: the biggest of the tracking server's and the endpoints'
    (`gpu` there means the biggest CPU class, as in the Kubernetes target)."""
    order: list[SizeClass] = ["small", "medium", "large"]
    classes = [spec.registry.server_size, *(m.serving.size for m in spec.models)]
    return max((c if c != "gpu" else "large" for c in classes), key=order.index)


def shared_storage_class(spec: PlatformSpec) -> str | None:
    """The ReadWriteMany class of the shared data volume: the cloud's, outside dev (one node is enough in dev)."""
    return FACTS[spec.target].shared_storage_class if spec.environment != "dev" else None


def workload_spec(spec: PlatformSpec) -> PlatformSpec:
    """The spec the Kubernetes target sees on the cloud's cluster: target 'kubernetes', the cloud's storage
    classes, no S3 endpoint (the cloud's object store, given through the profile, replaces it)."""
    facts = FACTS[spec.target]
    artifacts = spec.registry.artifacts.model_copy(update={"s3_endpoint": None, "bucket": None,
                                                           "s3_credentials": None})
    return spec.model_copy(update={
        "target": "kubernetes", spec.target: None,
        "registry": spec.registry.model_copy(update={"artifacts": artifacts}),
        "kubernetes": KubernetesSpec(storage_class=facts.storage_class,
                                     shared_storage_class=shared_storage_class(spec)),
    })


def check(spec: PlatformSpec) -> list[Problem]:
    """What the cluster profile refuses in `spec` beyond the cloud's own rules: what the Kubernetes target
    refuses in the workload spec, and public endpoints (no ingress is declared on the cluster profile yet);
    nothing on the managed profile."""
    if not on_cluster(spec):
        return []
    facts = FACTS[spec.target]
    problems = [p for p in kubernetes_rules.check(workload_spec(spec))
                if not p.path.startswith("kubernetes.") and not p.path.endswith(".serving.public")]
    problems += [Problem.at(f"models[{i}].serving.public", (
        f"public endpoints are not available on the {facts.service} cluster profile yet: endpoints are ClusterIP "
        "Services; publish them through your own ingress, or use compute 'managed'"))
        for i, model in enumerate(spec.models) if model.serving.public]
    return problems


def ignored(spec: PlatformSpec) -> list[Notice]:
    """Every setting of `spec` the cluster profile does not honour: the Kubernetes target's notices on the
    workload spec, less what the cloud side honours, plus the S3-endpoint settings."""
    facts = FACTS[spec.target]
    notices = [n for n in kubernetes_rules.ignored(workload_spec(spec))
               if not any(n.path == key or (key.endswith(".") and n.path.startswith(key)) for key in _HONOURED)]
    notices += [Notice(key, f"not used: the artifacts live in the stack's {facts.store}, reached with the tracking "
                            "server's workload identity") for key in changed(spec, *_S3_KEYS)]
    return notices
