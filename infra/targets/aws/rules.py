"""What the AWS target refuses (`check`) and what it does not honour (`ignored`): pure, no SDK.

`check` holds the spec to what AWS's APIs would refuse at `pulumi up` (region and VPC shapes, address plans,
availability zones, names, rollouts on the fleet size), so `shipyard validate` says it first, located by key.
`ignored` names every setting the AWS program does not use as written, with what happens instead; settings a
registry mode or an existing network makes moot are named only when they differ from the defaults. With
`aws.compute: kubernetes` (the EKS cluster profile) the region, network and name rules still hold; the rest are
the Kubernetes target's (`infra.targets.cluster`).
"""

from __future__ import annotations

import re

from infra.problems import Notice, Problem
from infra.spec import AwsSpec, PlatformSpec
from infra.targets import cluster
from infra.targets.aws import eks_facts
from infra.targets.aws.jobs import aws_cron
from infra.targets.aws.names import LIMITS, aws_name
from infra.targets.aws.rollout import fleet_size, shift_notices, shift_problem, traffic_shift
from infra.targets.baseline import changed
from infra.targets.schedules import schedule_problems

#: A region (`us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-5`); a zone adds a letter.
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$")
_ZONE = re.compile(r"^([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+)[a-z]$")
#: An existing VPC's id: 'vpc-' and 8 or 17 hex digits.
_VPC_ID = re.compile(r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$")
#: A Secrets Manager secret's ARN (what ECS `valueFrom` needs for a secret of another account or name).
_SECRET_ARN = re.compile(r"^arn:aws[-a-z]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")

#: Regions where new accounts see fewer than three availability zones (us-west-1: two).
ZONES_BY_REGION: dict[str, int] = {"us-west-1": 2}

#: What each kind of name may contain, by AWS's API, and the rule in words (length limits: `names.LIMITS`).
NAME_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "ecr": (re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$"), "ECR repositories: no two separators in a row"),
    "rds": (re.compile(r"^[a-z]([a-z0-9]|-(?!-))*[a-z0-9]$"), "RDS identifiers: a letter first, no '--'"),
    "alb": (re.compile(r"^(?!internal-)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$"),
            "load balancers: no name beginning with 'internal-'"),
    "target_group": (re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$"), "target groups: letters, digits, '-'"),
    "sagemaker": (re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"), "SageMaker: letters, digits, '-'"),
    "schedule": (re.compile(r"^[0-9a-zA-Z_.-]+$"), "schedules: letters, digits, '-', '_', '.'"),
    "rule": (re.compile(r"^[0-9a-zA-Z_.-]+$"), "EventBridge rules: letters, digits, '-', '_', '.'"),
    "ecs": (re.compile(r"^[a-zA-Z0-9_-]+$"), "ECS clusters: letters, digits, '-', '_'"),
    "eks_cluster": (re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]*$"), "EKS clusters: a letter or digit first, then "
                                                                 "letters, digits, '-', '_'"),
    "node_group": (re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]*$"), "EKS node groups: letters, digits, '-', '_'"),
}


def region_problems(region: str | None) -> list[Problem]:
    """A region AWS knows the shape of; an availability zone is named as the mistake it is."""
    if region is None or _REGION.match(region):
        return []
    zone = _ZONE.match(region)
    if zone:
        return [Problem.at("region", f"{region!r} is an availability zone; the region is {zone.group(1)!r}")]
    return [Problem.at("region", f"{region!r} is not an AWS region (e.g. 'us-east-1', 'eu-west-2')")]



def self_hosted_database(spec: PlatformSpec) -> bool:
    """Whether the stack runs its own RDS instance (self-hosted MLflow without an external database)."""
    return spec.aws_settings.registry_mode == "self-hosted" and spec.registry.database.external_url is None


def _cluster_names(spec: PlatformSpec) -> list[tuple[str, str, str]]:
    """The physical names of the EKS cluster profile (the workloads' own are the Kubernetes target's)."""
    prefix = spec.prefix
    names = [("name", "ecr", aws_name(prefix, "runtime", kind="ecr")),
             ("name", "eks_cluster", aws_name(prefix, "eks", kind="eks_cluster"))]
    names += [("training", "node_group", aws_name(plan.name, kind="node_group"))
              for plan in eks_facts.node_group_plans(spec)]
    if spec.registry.database.external_url is None:
        names += [("name", "rds", aws_name(prefix, "mlflow", kind="rds")),
                  ("name", "rds", aws_name(prefix, "mlflow-final", kind="rds"))]
    return names


def generated_names(spec: PlatformSpec) -> list[tuple[str, str, str]]:
    """(key path that drives it, kind, name) of every physical name the AWS program gives, as it gives it."""
    if cluster.on_cluster(spec):
        return _cluster_names(spec)
    prefix, mode = spec.prefix, spec.aws_settings.registry_mode
    names = [("name", "ecr", aws_name(prefix, "runtime", kind="ecr"))]
    if mode == "sagemaker":
        names.append(("name", "sagemaker", aws_name(prefix, "mlflow")))
    else:
        names += [("name", "alb", aws_name(prefix, "mlflow", kind="alb")),
                  ("name", "target_group", aws_name(prefix, "mlflow", kind="target_group")),
                  ("name", "ecs", aws_name(prefix, "mlflow", kind="ecs"))]
    if self_hosted_database(spec):
        names += [("name", "rds", aws_name(prefix, "mlflow", kind="rds")),
                  ("name", "rds", aws_name(prefix, "mlflow-final", kind="rds"))]
    for i, model in enumerate(spec.models):
        key = f"models[{i}].name"
        names += [(key, "sagemaker", aws_name(prefix, model.name)),
                  (key, "sagemaker", aws_name(prefix, "training", model.name)),
                  (key, "sagemaker", aws_name(prefix, "monitor", model.name)),
                  (key, "schedule", aws_name(prefix, "training", model.name, kind="schedule")),
                  (key, "schedule", aws_name(prefix, "monitor", model.name, kind="schedule"))]
        if model.monitoring.retrain_on_drift:
            names.append((key, "rule", aws_name(f"{prefix}-{model.name}", "retrain", kind="rule")))
    return names


def _name_problems(spec: PlatformSpec) -> list[Problem]:
    refused: dict[str, list[str]] = {}
    for key, kind, name in generated_names(spec):
        pattern, rule = NAME_RULES[kind]
        if len(name) > LIMITS[kind] or not pattern.match(name):
            refused.setdefault(key, []).append(f"the {kind} name {name!r} ({rule}, at most {LIMITS[kind]} characters)")
    return [Problem.at(key, f"makes names AWS refuses: {'; '.join(dict.fromkeys(found))}")
            for key, found in refused.items()]


def _network_problems(spec: PlatformSpec) -> list[Problem]:
    """A VPC id AWS knows the shape of, or the platform VPC's zones within what the region offers (its address
    range is checked by the spec: private, /16 to /24, room for a subnet per zone)."""
    problems = []
    network = spec.networking.existing_network
    if network is not None:
        if not _VPC_ID.match(network):
            problems.append(Problem.at("networking.existing_network",
                                       f"{network!r} is not a VPC id (e.g. 'vpc-0a1b2c3d4e5f67890')"))
        return problems  # the VPC's own address plan and zones are used
    settings = spec.aws_settings
    zones = ZONES_BY_REGION.get(spec.region or "")
    if zones is not None and settings.availability_zones > zones:
        problems.append(Problem.at("aws.availability_zones", (
            f"{spec.region} offers new accounts {zones} availability zones; the platform's subnets need "
            f"{settings.availability_zones}: set aws.availability_zones to {zones}")))
    return problems


def _rollout_problems(spec: PlatformSpec) -> list[Problem]:
    problems = []
    for i, model in enumerate(spec.models):
        fleet = fleet_size(model.serving)
        problem = shift_problem(traffic_shift(model.serving.rollout, fleet), fleet)
        if problem:
            problems.append(Problem.at(f"models[{i}].serving.rollout.strategy", problem))
    return problems


def check(spec: PlatformSpec) -> list[Problem]:
    """Everything in `spec` the AWS target refuses, located by key path: on the EKS cluster profile the region,
    network and name rules (EKS's names included) and the Kubernetes target's (`infra.targets.cluster`)."""
    if cluster.on_cluster(spec):
        return (region_problems(spec.region) + _network_problems(spec) + _name_problems(spec)
                + cluster.check(spec))
    problems = region_problems(spec.region) + schedule_problems(spec, aws_cron)
    for i, model in enumerate(spec.models):
        if model.serving.public:
            problems.append(Problem.at(f"models[{i}].serving.public", (
                "is not supported on target 'aws': SageMaker endpoints are invoked through the SageMaker runtime "
                "API with IAM (SigV4) credentials only; put an authenticated API in front of it yourself, or set "
                "serving.public: false")))
    external = spec.registry.database.external_url
    if external is not None and external.ref is not None and not _SECRET_ARN.match(external.ref):
        problems.append(Problem.at("registry.database.external_url.ref", (
            f"{external.ref!r} must be the ARN of a Secrets Manager secret holding the URL "
            "('arn:aws:secretsmanager:<region>:<account>:secret:<name>')")))
    return problems + _network_problems(spec) + _rollout_problems(spec) + _name_problems(spec)


_DATABASE_KEYS = ("size", "storage_gb", "high_availability", "backup_retention_days", "external_url")
_ARTIFACT_KEYS = ("s3_endpoint", "bucket", "s3_credentials")

#: Keys the AWS target never uses -> what happens instead (named when they differ from the defaults).
_NEVER: dict[str, str] = {
    "networking.private": ("false is not honoured on AWS: every workload stays on private subnets without public "
                           "addresses; endpoints are reached through the SageMaker runtime API with IAM"),
    "training.min_nodes": ("not used on AWS: SageMaker starts each job's instances on demand and releases them "
                           "when it ends; nothing is kept warm"),
    "training.max_nodes": ("not a node count on AWS: every SageMaker job runs on one instance of training.size; it "
                           "only caps a pipeline execution's parallel steps, which run one after another"),
    **{f"registry.artifacts.{key}": "not used on AWS: artifacts go to the stack's own S3 bucket (SSE-KMS)"
       for key in _ARTIFACT_KEYS},
}

#: With `aws.registry_mode: sagemaker`: keys of the self-hosted registry -> what happens instead.
_MANAGED: dict[str, str] = {
    "registry.workers": "not used with aws.registry_mode 'sagemaker': SageMaker runs the managed MLflow server",
    "networking.allowed_cidrs": ("not used with aws.registry_mode 'sagemaker': there is no load balancer; clients "
                                 "reach the managed MLflow server and the endpoints with IAM"),
    **{f"registry.database.{key}": ("not used with aws.registry_mode 'sagemaker': SageMaker's managed MLflow "
                                    "keeps its own backend store")
       for key in _DATABASE_KEYS},
}

#: With `registry.database.external_url` (self-hosted): RDS settings -> what happens instead.
_EXTERNAL: dict[str, str] = {
    **{f"registry.database.{key}": "not used with registry.database.external_url: no RDS instance is created; "
                                   "that database's size, storage and backups are its owner's"
       for key in ("size", "storage_gb", "backup_retention_days")},
    "registry.database.high_availability": ("with registry.database.external_url it only adds a second MLflow "
                                            "task; the external database's availability is its owner's"),
}

#: With `networking.existing_network`: the platform VPC's settings (under `aws.`), not used.
_OWN_VPC_KEYS = ("vpc_cidr", "availability_zones")


def _table(spec: PlatformSpec, table: dict[str, str]) -> list[Notice]:
    return [Notice(key, table[key]) for key in changed(spec, *table)]


def _own_vpc_notices(spec: PlatformSpec) -> list[Notice]:
    if spec.networking.existing_network is None:
        return []
    return _aws_notices(spec, dict.fromkeys(_OWN_VPC_KEYS, "not used with networking.existing_network: the VPC's "
                                                           "own subnets tagged shipyard:tier=private are used"))


#: On the EKS cluster profile: settings of the managed profile (under `aws.`) -> what happens instead.
_CLUSTER: dict[str, str] = {
    "registry_mode": ("not used with aws.compute 'kubernetes': MLflow runs on the cluster (the Kubernetes "
                      "target's tracking server) on the stack's RDS PostgreSQL"),
}


def _aws_notices(spec: PlatformSpec, table: dict[str, str]) -> list[Notice]:
    """Notices for keys of the `aws` section that differ from its defaults."""
    defaults = AwsSpec()
    return [Notice(f"aws.{key}", message) for key, message in table.items()
            if getattr(spec.aws_settings, key) != getattr(defaults, key)]


def ignored(spec: PlatformSpec) -> list[Notice]:
    """Every setting of `spec` the AWS target does not honour, with what happens instead."""
    if cluster.on_cluster(spec):
        return cluster.ignored(spec) + _aws_notices(spec, _CLUSTER) + _own_vpc_notices(spec)
    notices = _table(spec, _NEVER)
    if spec.aws_settings.registry_mode == "sagemaker":
        notices += _table(spec, _MANAGED)
    elif spec.registry.database.external_url is not None:
        notices += _table(spec, _EXTERNAL)
    notices += _own_vpc_notices(spec)
    for i, model in enumerate(spec.models):
        serving = model.serving
        if serving.min_replicas == 0:
            notices.append(Notice(f"models[{i}].serving.min_replicas", (
                "0 is raised to 1 on AWS: a SageMaker real-time endpoint keeps at least one instance running")))
        if serving.auth == "api_key":
            notices.append(Notice(f"models[{i}].serving.auth", (
                "'api_key' is not used on AWS: SageMaker endpoints are always invoked with IAM (SigV4) "
                "credentials")))
        for key, message in shift_notices(serving.rollout, fleet_size(serving)).items():
            path = f"models[{i}].serving.rollout.{key}"
            if changed(spec, path, f"models[{i}].serving.min_replicas"):  # not about defaults nobody wrote
                notices.append(Notice(path, message))
    return notices
