"""Physical names for AWS resources, within the length limit of each kind of resource.

AWS limits name lengths per service, and a legal spec (a 40-character platform name, a 7-character
environment, a 40-character model name) easily exceeds them. A name that would be too long keeps its
readable start and ends in a short hash of the whole, so it stays unique and stable.

Two uses: explicit names (`name=` of endpoints, alarms, schedules...), and the logical names of resources
Pulumi auto-names (IAM roles, the SageMaker model and endpoint configuration, the bucket): Pulumi appends
`AUTONAME_SUFFIX` characters to those, so `autonamed=True` leaves room for them.
"""

from __future__ import annotations

from infra.targets.naming import AUTONAME_SUFFIX, fit, joined

#: Longest physical name per kind of resource (AWS's API limits).
LIMITS = {
    "alb": 32,
    "target_group": 32,
    "sagemaker": 63,        # models, endpoint configurations, endpoints (pipelines allow 256; we keep 63)
    "s3_bucket": 63,
    "iam_role": 64,
    "iam_policy": 128,
    "schedule": 64,
    "rule": 64,
    "rds": 63,
    "alarm": 255,
    "dashboard": 255,
    "ecs": 255,
    "ecr": 256,
    "eks_cluster": 100,
    "node_group": 63,
}


def aws_name(*parts: str, kind: str = "sagemaker", autonamed: bool = False) -> str:
    """`parts` joined with '-', shortened to the limit of `kind` with a hash suffix when needed.

    With `autonamed`, the result is a logical name Pulumi will extend by `AUTONAME_SUFFIX` characters.
    """
    return fit(joined(*parts), LIMITS[kind] - (AUTONAME_SUFFIX if autonamed else 0))
