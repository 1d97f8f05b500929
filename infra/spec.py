"""The platform spec: one validated description of an ML platform, shared by every stack.

The spec speaks in platform terms (size classes, replica bounds, schedules, thresholds); each target
maps those terms onto its own services through small tables. Every model is strict: an unknown key is
an error, and every cross-field rule reports the exact key path at fault.

The sections the compute reads (pipeline, the serving alias, the monitoring settings), their defaults and
the estimator and metric names are the pipelines' own (`pipelines.contract`, `pipelines.catalog`): this
module adds only what the platform needs around them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from infra.cron import normalize
from infra.image import REPOSITORY, check_runtime_image
from pipelines.contract import (
    MonitoringSettings,
    PipelineSpec,
    Promotion,
    ServingSettings,
    StrictModel,
    check_quality_metrics,
)

SizeClass = Literal["small", "medium", "large", "gpu"]
TargetName = Literal["local", "kubernetes", "aws", "gcp", "azure"]
EnvironmentName = Literal["dev", "staging", "prod"]
#: How a cloud target runs the platform: on its managed services, or on a managed Kubernetes cluster the stack
#: creates (EKS, GKE, AKS) running the Kubernetes target's workloads.
ComputeProfile = Literal["managed", "kubernetes"]
_COMPUTE = ("'managed': the cloud's managed services, no cluster to operate; 'kubernetes': a managed cluster "
            "created by the stack ({cluster}), running the Kubernetes target's workloads (docs/{cloud}.md)")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

CronText = Annotated[str, Field(description="A five-field cron expression, e.g. '0 3 * * 0'.")]
DnsName = Annotated[str, Field(min_length=1, max_length=40, description="Lowercase letters, digits and '-'.")]


def _check_cron(value: str) -> str:
    """A valid schedule, written in the numeric form every target's scheduler accepts."""
    try:
        return normalize(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid cron schedule (e.g. '0 3 * * 0', '0 6 * * MON-FRI', "
                         f"'@daily'): {exc}") from None


def check_cidr(value: str) -> str:
    """An IPv4 network in CIDR notation, exactly (no host bits set)."""
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 CIDR block (e.g. '203.0.113.0/24')") from None
    if network.version != 4:
        raise ValueError(f"{value!r} is IPv6; the targets' access rules take IPv4 CIDR blocks")
    if str(network) != value:
        raise ValueError(f"{value!r} has host bits set; the network is {str(network)!r}")
    return value


def _check_dns(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} must be lowercase letters, digits and '-', starting with a letter")
    return value


Cidr = Annotated[str, AfterValidator(check_cidr), Field(description="An IPv4 CIDR block, e.g. '203.0.113.0/24'.")]


class Secret(StrictModel):
    """A secret value: a Pulumi secret (`pulumi config set --secret`) or a reference to a secret store.

    Plaintext is refused. `source` is the key path that held it, filled in by the loader.
    """

    secure: str | None = Field(None, description="Pulumi ciphertext, as `pulumi config set --secret` writes it.")
    ref: str | None = Field(None, description="A reference to an existing secret in the target's secret store.")
    source: str = Field("", description="Set by the loader: the config key path of this secret.")

    @model_validator(mode="before")
    @classmethod
    def _refuse_plaintext(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(
                "plaintext secrets are refused: set it with `pulumi config set --secret <key> <value>` "
                "or give {ref: <existing secret>}"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Secret:
        if (self.secure is None) == (self.ref is None):
            raise ValueError("give exactly one of 'secure' (a Pulumi secret) or 'ref'")
        return self


class NetworkingSpec(StrictModel):
    """Network exposure. Private by default: nothing is reachable from outside unless asked for."""

    private: bool = Field(True, description="Keep every workload on private addresses.")
    allowed_cidrs: list[Cidr] = Field(default_factory=list, description="Clients allowed to reach public endpoints.")
    existing_network: str | None = Field(None, description="Use this existing VPC / VNet / network.")


class TrainingSpec(StrictModel):
    """The training cluster: the compute that runs the packaged pipelines."""

    size: SizeClass = Field("medium", description="Node size class; each target maps it through its size table.")
    min_nodes: int = Field(0, ge=0, le=100)
    max_nodes: int = Field(2, ge=1, le=100)
    gpu_count: int = Field(0, ge=0, le=8, validate_default=True, description="GPUs per node; needs size 'gpu'.")
    spot: bool = Field(True, description="Use spot / preemptible capacity.")
    schedule: CronText = Field("0 3 * * 0", description="Continuous-training schedule.")
    time_limit_minutes: int = Field(120, ge=5, le=24 * 60)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return _check_cron(value)

    @field_validator("max_nodes")
    @classmethod
    def _max_nodes(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_nodes")
        if low is not None and value < low:
            raise ValueError(f"must be >= min_nodes ({low})")
        return value

    @field_validator("gpu_count")
    @classmethod
    def _gpu(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("size")
        if size == "gpu" and value == 0:
            raise ValueError("size 'gpu' needs gpu_count >= 1")
        if size not in (None, "gpu") and value > 0:
            raise ValueError(f"needs training.size 'gpu' (is {size!r})")
        return value


class DatabaseSpec(StrictModel):
    """The registry's backend database (PostgreSQL on every cloud target)."""

    size: SizeClass = "small"
    storage_gb: int = Field(20, ge=20, le=4096)
    high_availability: bool = False
    backup_retention_days: int = Field(1, ge=0, le=35)
    external_url: Secret | None = Field(None, description="Use an existing database (a SQLAlchemy URL) instead.")


class ArtifactSpec(StrictModel):
    """The registry's artifact store."""

    versioning: bool = True
    noncurrent_version_retention_days: int = Field(30, ge=1, le=3650)
    s3_endpoint: str | None = Field(None, description="An existing S3-compatible endpoint (Kubernetes target).")
    bucket: str | None = Field(None, description="Bucket name on that endpoint.")
    s3_credentials: Secret | None = Field(None, description="'ACCESS_KEY:SECRET_KEY' for that endpoint.")


class RegistrySpec(StrictModel):
    """The model registry: MLflow tracking server, backend database and artifact store."""

    server_size: SizeClass = "small"
    workers: int = Field(1, ge=1, le=16, description="MLflow server workers.")
    database: DatabaseSpec = Field(default_factory=DatabaseSpec)
    artifacts: ArtifactSpec = Field(default_factory=ArtifactSpec)


class RolloutSpec(StrictModel):
    """How a new model version replaces the serving one."""

    strategy: Literal["rolling", "blue_green", "canary"] = "rolling"
    canary_percent: int = Field(10, ge=1, le=50)
    bake_minutes: int = Field(10, ge=0, le=240, description="Minutes a new version is watched first.")


class ServingSpec(ServingSettings):
    """The serving endpoint for one model's champion."""

    min_replicas: int = Field(1, ge=0, le=100)
    max_replicas: int = Field(3, ge=1, le=200)
    target_cpu_utilization: int = Field(70, ge=10, le=95)
    size: SizeClass = "small"
    auth: Literal["none", "api_key", "iam"] = "none"
    public: bool = False
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)

    @field_validator("max_replicas")
    @classmethod
    def _max_replicas(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_replicas")
        if low is not None and value < low:
            raise ValueError(f"must be >= min_replicas ({low})")
        return value


class AlertSpec(StrictModel):
    """Where drift and quality alerts go."""

    kind: Literal["email", "webhook"]
    address: str | None = Field(None, description="The e-mail address (kind: email).")
    url: Secret | None = Field(None, description="The webhook URL, a secret (kind: webhook).")

    @model_validator(mode="after")
    def _destination(self) -> AlertSpec:
        if self.kind == "email" and not (self.address and "@" in self.address):
            raise ValueError("kind 'email' needs 'address' (an e-mail address)")
        if self.kind == "webhook" and self.url is None:
            raise ValueError("kind 'webhook' needs 'url' (a secret)")
        return self


class MonitoringSpec(MonitoringSettings):
    """Drift and quality monitoring for one model, and what it triggers."""

    schedule: CronText = "0 * * * *"
    alerts: list[AlertSpec] = Field(default_factory=list)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return _check_cron(value)


class ModelSpec(StrictModel):
    """One model: how it is trained, served and watched."""

    name: DnsName
    promotion: Promotion = Field("auto", description="How a version that passed every gate becomes champion: "
                                 "'auto' (at once) or 'manual' (it waits for `shipyard approve`; prod's default).")
    pipeline: PipelineSpec = Field(default_factory=PipelineSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_dns(value)

    @field_validator("monitoring")
    @classmethod
    def _quality_metrics(cls, value: MonitoringSpec, info: ValidationInfo) -> MonitoringSpec:
        pipeline = info.data.get("pipeline")
        check_quality_metrics(value, pipeline.task if pipeline is not None else None)
        return value

    @property
    def registered_model(self) -> str:
        """The registry's name for this model."""
        return self.serving.registered_model or self.name


class KubernetesSpec(StrictModel):
    """Settings only the Kubernetes target has."""

    namespace: str | None = Field(None, description="Defaults to '<name>-<environment>'.")
    storage_class: str | None = Field(None, description="Storage class of the database and artifact volumes.")
    shared_storage_class: str | None = Field(
        None, description="A ReadWriteMany storage class for the shared data volume (inference logs, drift reports); "
        "unset, the volume is ReadWriteOnce on storage_class and every pod mounting it runs on one node.")
    prometheus_operator: bool = Field(False, description="The cluster runs the Prometheus operator.")
    ingress_class: str | None = Field(None, description="Ingress class for endpoints with serving.public "
                                      "(the Kubernetes target supports 'nginx').")
    ingress_host: str | None = Field(None, description="The DNS name public endpoints are published under "
                                     "(https://<host>/<model>/invocations); required with serving.public.")
    ingress_tls_secret: str | None = Field(None, description="An existing kubernetes.io/tls Secret in the namespace "
                                           "holding the certificate of ingress_host; required with serving.public.")
    cluster_domain: str = Field("cluster.local", description="The cluster's DNS domain (in-cluster service names "
                                "are <service>.<namespace>.svc.<cluster_domain>).")
    dashboard_url: str | None = Field(None, description="Where the cluster's Grafana shows the drift metrics.")
    image_repository: str | None = Field(
        None, description="Where the program pushes the runtime image it builds (no tag), e.g. "
                          "'localhost:5001/shipyard-runtime'; required unless runtime_image pins an image.")
    image_pull_secret: Secret | None = Field(
        None, description="Registry credentials: {secure: 'USER:PASSWORD'} (the program pushes with them and "
                          "creates the pods' pull Secret) or {ref: <existing kubernetes.io/dockerconfigjson "
                          "Secret in the namespace>} (pods pull with it; the push uses the deployer's docker login).")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value is not None and len(value) > 63:
            raise ValueError(f"{value!r} has {len(value)} characters; a namespace has at most 63 (RFC 1123 label)")
        return None if value is None else _check_dns(value)

    @field_validator("image_repository")
    @classmethod
    def _image_repository(cls, value: str | None) -> str | None:
        if value is not None and not REPOSITORY.match(value):
            raise ValueError(f"{value!r} is not a repository ('[registry[:port]/]path', lowercase, no tag or digest)")
        return value


class AwsSpec(StrictModel):
    """Settings only the AWS target has."""

    compute: ComputeProfile = Field("managed", description=_COMPUTE.format(cluster="EKS", cloud="aws"))

    registry_mode: Literal["self-hosted", "sagemaker"] = Field(
        "self-hosted", description="MLflow on ECS Fargate with RDS, or SageMaker's managed MLflow."
    )
    vpc_cidr: str = Field("10.42.0.0/16", description="The new VPC's private range, /16 to /24.")
    availability_zones: int = Field(2, ge=2, le=3)

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, value: str) -> str:
        network = ipaddress.ip_network(check_cidr(value))
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(f"{value!r}: a VPC for this platform is /16 to /24 (AWS allows /16 to /28; the subnets "
                             "need room)")
        if not network.is_private:
            raise ValueError(f"{value!r} is not a private range (RFC 1918, e.g. 10.42.0.0/16)")
        return value


class GcpSpec(StrictModel):
    """Settings only the GCP target has."""

    compute: ComputeProfile = Field("managed", description=_COMPUTE.format(cluster="GKE", cloud="gcp"))

    project: str | None = Field(None, description="The Google Cloud project id every resource is created in.")
    subnet_cidr: str = Field("10.60.0.0/20", description="The private subnet the workloads' Direct VPC egress uses.")
    peering_prefix_length: int = Field(
        20, ge=8, le=24, description="Size of the range reserved for private services access (Cloud SQL).")
    enable_apis: bool = Field(True, description="Enable the project's APIs the platform uses (needs serviceusage "
                                                "admin); off when an organisation enables them centrally.")

    @field_validator("subnet_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        if not ipaddress.ip_network(check_cidr(value)).is_private:
            raise ValueError(f"{value!r} is not a private range (RFC 1918, e.g. 10.60.0.0/20)")
        return value


class AzureSpec(StrictModel):
    """Settings only the Azure target has."""

    compute: ComputeProfile = Field("managed", description=_COMPUTE.format(cluster="AKS", cloud="azure"))

    vnet_cidr: str = Field("10.52.0.0/16", description=(
        "Address space of the platform's VNet, /8 to /22; with networking.existing_network, the range inside "
        "that VNet this stack carves its three subnets from."))
    gpu_workload_profile: Literal["Consumption-GPU-NC8as-T4", "Consumption-GPU-NC24-A100"] = Field(
        "Consumption-GPU-NC8as-T4", description="Serverless GPU workload profile for size 'gpu' (one GPU each).")
    log_retention_days: int = Field(30, ge=30, le=730, description="Log Analytics retention.")

    @field_validator("vnet_cidr")
    @classmethod
    def _vnet_cidr(cls, value: str) -> str:
        network = ipaddress.ip_network(check_cidr(value))
        if not 8 <= network.prefixlen <= 22:
            raise ValueError(f"{value!r}: the platform's subnets need a /22 or larger (/8 to /22)")
        if not network.is_private:
            raise ValueError(f"{value!r} is not a private range (RFC 1918, e.g. 10.52.0.0/16)")
        return value


class PlatformSpec(StrictModel):
    """The whole platform: one training cluster, one registry, and one or more served, monitored models."""

    name: DnsName = Field("shipyard", description="Prefix of every resource name.")
    target: TargetName
    environment: EnvironmentName = "dev"
    region: str | None = Field(None, validate_default=True, description="Cloud region; required on cloud targets.")
    tags: dict[str, str] = Field(default_factory=dict)
    protect: bool = Field(False, description="Protect and retain stateful resources (registry database, artifacts).")
    runtime_image: str | None = Field(
        None, description="Unset: the program builds the project's Dockerfile and pushes it to the target's "
                          "registry. Set: the image every workload runs instead, 'repository@sha256:<64 hex>' "
                          "(a tag is accepted in dev only).")
    networking: NetworkingSpec = Field(default_factory=NetworkingSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    registry: RegistrySpec = Field(default_factory=RegistrySpec)
    models: list[ModelSpec] = Field(min_length=1)
    kubernetes: KubernetesSpec | None = None
    aws: AwsSpec | None = None
    gcp: GcpSpec | None = None
    azure: AzureSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_dns(value)

    @field_validator("target")
    @classmethod
    def _available(cls, value: str) -> str:
        from infra.targets import TARGETS

        if value not in TARGETS:
            raise ValueError(f"target {value!r} is planned but not available yet; available: {sorted(TARGETS)}")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("target") in ("aws", "gcp", "azure"):
            raise ValueError(f"is required for target {info.data['target']!r}")
        return value

    @field_validator("runtime_image")
    @classmethod
    def _runtime_image(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else check_runtime_image(value, info.data.get("environment", "dev"))

    @field_validator("models")
    @classmethod
    def _unique_models(cls, value: list[ModelSpec]) -> list[ModelSpec]:
        seen: set[str] = set()
        for model in value:
            if model.name in seen:
                raise ValueError(f"model name {model.name!r} appears twice")
            seen.add(model.name)
        return value

    @field_validator("kubernetes", "aws", "gcp", "azure")
    @classmethod
    def _target_section(cls, value: StrictModel | None, info: ValidationInfo) -> StrictModel | None:
        target = info.data.get("target")
        if value is not None and target is not None and target != info.field_name:
            raise ValueError(f"only applies when target is {info.field_name!r} (target is {target!r})")
        return value

    @property
    def is_prod(self) -> bool:
        """Whether this is a production stack."""
        return self.environment == "prod"

    @property
    def prefix(self) -> str:
        """The resource-name prefix: '<name>-<environment>'."""
        return f"{self.name}-{self.environment}"

    @property
    def compute(self) -> ComputeProfile:
        """The cloud target's profile (`<cloud>.compute`); 'managed' on targets without one."""
        section = {"aws": self.aws, "gcp": self.gcp, "azure": self.azure}.get(self.target)
        return section.compute if section is not None else "managed"

    @property
    def k8s(self) -> KubernetesSpec:
        """The Kubernetes section, with defaults when the stack gives none."""
        return self.kubernetes or KubernetesSpec()

    @property
    def aws_settings(self) -> AwsSpec:
        """The AWS section, with defaults when the stack gives none."""
        return self.aws or AwsSpec()

    @property
    def gcp_settings(self) -> GcpSpec:
        """The GCP section, with defaults when the stack gives none."""
        return self.gcp or GcpSpec()

    @property
    def azure_settings(self) -> AzureSpec:
        """The Azure section, with defaults when the stack gives none."""
        return self.azure or AzureSpec()

    @property
    def all_tags(self) -> dict[str, str]:
        """The user's tags plus the ones every resource carries."""
        return {"shipyard:platform": self.name, "shipyard:environment": self.environment, **self.tags}


#: Defaults per environment, under the shared spec and the stack overlay: prod is safer than dev.
ENVIRONMENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {
        "protect": False,
        "training": {"spot": True},
        "registry": {"database": {"high_availability": False, "backup_retention_days": 1},
                     "artifacts": {"noncurrent_version_retention_days": 7}},
    },
    "staging": {
        "protect": False,
        "training": {"spot": True},
        "registry": {"database": {"high_availability": False, "backup_retention_days": 7},
                     "artifacts": {"noncurrent_version_retention_days": 30}},
    },
    "prod": {
        "protect": True,
        "training": {"spot": False},
        "registry": {"database": {"high_availability": True, "backup_retention_days": 30},
                     "artifacts": {"noncurrent_version_retention_days": 90}},
    },
}

#: Defaults per environment for every model, under the model's own keys.
MODEL_ENVIRONMENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {"serving": {"min_replicas": 1}},
    "staging": {"serving": {"min_replicas": 1}},
    "prod": {"promotion": "manual", "serving": {"min_replicas": 2, "rollout": {"strategy": "canary"}}},
}
