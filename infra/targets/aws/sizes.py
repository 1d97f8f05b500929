"""The AWS size table: one row per platform size class, every AWS capacity the spec's sizes map onto.

Adding a size, or moving a size to another instance family, is one row here. Every figure is an
instance type or a Fargate cpu/memory pair that AWS accepts as written.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.spec import SizeClass


@dataclass(frozen=True)
class AwsSize:
    """What one size class means on AWS, for every workload."""

    #: SageMaker training-job instance (the `train` step).
    training: str
    #: SageMaker processing-job instance (validate-data, evaluate, register, monitor).
    processing: str
    #: SageMaker real-time endpoint instance, and its vCPUs (SageMaker reports CPUUtilization summed over cores).
    serving: str
    serving_vcpus: int
    #: RDS PostgreSQL instance class for the registry database.
    database: str
    #: Fargate task size for the self-hosted MLflow server: vCPU units and MiB.
    fargate_cpu: int
    fargate_memory: int
    #: SageMaker managed MLflow tracking-server size.
    mlflow_server: str


#: Size class -> AWS capacities. `gpu` keeps CPU-only services (RDS, Fargate, MLflow) at `large`.
SIZES: dict[SizeClass, AwsSize] = {
    "small": AwsSize("ml.m5.large", "ml.m5.large", "ml.m5.large", 2,
                     "db.t4g.micro", 512, 1024, "Small"),
    "medium": AwsSize("ml.m5.xlarge", "ml.m5.xlarge", "ml.m5.xlarge", 4,
                      "db.t4g.medium", 1024, 2048, "Medium"),
    "large": AwsSize("ml.m5.4xlarge", "ml.m5.4xlarge", "ml.c5.4xlarge", 16,
                     "db.r6g.large", 2048, 4096, "Large"),
    "gpu": AwsSize("ml.g5.xlarge", "ml.m5.xlarge", "ml.g5.xlarge", 4,
                   "db.r6g.large", 2048, 4096, "Large"),
}

#: GPU training instances by GPU count (the smallest that has at least `training.gpu_count`).
GPU_TRAINING: tuple[tuple[int, str], ...] = ((1, "ml.g5.xlarge"), (4, "ml.g5.12xlarge"), (8, "ml.g5.48xlarge"))


#: Instance families whose volumes are NVMe instance storage, encrypted by the hardware: SageMaker refuses a
#: volume KMS key for them (and needs none).
INSTANCE_STORAGE_FAMILIES = frozenset({"g4dn", "g5", "g6", "g6e", "p4d", "p5", "m5d", "c5d", "r5d", "m6id", "c6id"})


def takes_volume_kms_key(instance_type: str) -> bool:
    """Whether SageMaker accepts a KMS key for this instance's storage volume (EBS-backed families only)."""
    family = instance_type.removeprefix("ml.").split(".")[0]
    return family not in INSTANCE_STORAGE_FAMILIES


def size(size_class: SizeClass) -> AwsSize:
    """The AWS row of a size class."""
    return SIZES[size_class]


def training_instance(size_class: SizeClass, gpu_count: int) -> str:
    """The training-job instance type: the size's, or for `gpu` the smallest instance with enough GPUs."""
    if size_class != "gpu":
        return SIZES[size_class].training
    for gpus, instance in GPU_TRAINING:
        if gpus >= gpu_count:
            return instance
    raise ValueError(f"no AWS training instance has {gpu_count} GPUs (at most {GPU_TRAINING[-1][0]})")
