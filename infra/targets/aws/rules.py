"""What the AWS target refuses (`check`) and what it does not honour (`ignored`): pure, no SDK."""

from __future__ import annotations

import re

from infra.problems import Notice, Problem
from infra.spec import PlatformSpec
from infra.targets.aws.jobs import aws_cron

#: A region (`us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-5`); a zone adds a letter.
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$")
_ZONE = re.compile(r"^([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+)[a-z]$")
#: An existing VPC's id: 'vpc-' and 8 or 17 hex digits.
_VPC_ID = re.compile(r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$")
#: A Secrets Manager secret's ARN (what ECS `valueFrom` needs for a secret of another account or name).
_SECRET_ARN = re.compile(r"^arn:aws[-a-z]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")


def region_problems(region: str | None) -> list[Problem]:
    """A region AWS knows the shape of; an availability zone is named as the mistake it is."""
    if region is None or _REGION.match(region):
        return []
    zone = _ZONE.match(region)
    if zone:
        return [Problem.at("region", f"{region!r} is an availability zone; the region is {zone.group(1)!r}")]
    return [Problem.at("region", f"{region!r} is not an AWS region (e.g. 'us-east-1', 'eu-west-2')")]


def _schedule_problems(spec: PlatformSpec) -> list[Problem]:
    schedules = {"training.schedule": spec.training.schedule}
    schedules.update({f"models[{i}].monitoring.schedule": m.monitoring.schedule for i, m in enumerate(spec.models)})
    problems = []
    for key, expression in schedules.items():
        try:
            aws_cron(expression)
        except ValueError as exc:
            problems.append(Problem.at(key, str(exc)))
    return problems


def check(spec: PlatformSpec) -> list[Problem]:
    """Everything in `spec` the AWS target refuses, located by key path."""
    problems = region_problems(spec.region) + _schedule_problems(spec)
    for i, model in enumerate(spec.models):
        if model.serving.public:
            problems.append(Problem.at(f"models[{i}].serving.public", (
                "is not supported on target 'aws': SageMaker endpoints are invoked through the SageMaker runtime "
                "API with IAM (SigV4) credentials only; put an authenticated API in front of it yourself, or set "
                "serving.public: false")))
    network = spec.networking.existing_network
    if network is not None and not _VPC_ID.match(network):
        problems.append(Problem.at("networking.existing_network",
                                   f"{network!r} is not a VPC id (e.g. 'vpc-0a1b2c3d4e5f67890')"))
    external = spec.registry.database.external_url
    if external is not None and external.ref is not None and not _SECRET_ARN.match(external.ref):
        problems.append(Problem.at("registry.database.external_url.ref", (
            f"{external.ref!r} must be the ARN of a Secrets Manager secret holding the URL "
            "('arn:aws:secretsmanager:<region>:<account>:secret:<name>')")))
    return problems


def ignored(spec: PlatformSpec) -> list[Notice]:
    """Every setting of `spec` the AWS target does not honour, with what happens instead."""
    notices = []
    for i, model in enumerate(spec.models):
        serving = model.serving
        if serving.min_replicas == 0:
            notices.append(Notice(f"models[{i}].serving.min_replicas", (
                "0 is raised to 1 on AWS: a SageMaker real-time endpoint keeps at least one instance running")))
        if serving.auth == "api_key":
            notices.append(Notice(f"models[{i}].serving.auth", (
                "'api_key' is not used on AWS: SageMaker endpoints are always invoked with IAM (SigV4) "
                "credentials")))
    return notices
