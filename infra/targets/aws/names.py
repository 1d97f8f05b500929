"""Physical names for AWS resources whose names are part of their identity (endpoints, pipelines, alarms).

AWS limits name lengths per service; a name that would be too long keeps its readable start and ends in
a short hash of the whole, so it stays unique and stable.
"""

from __future__ import annotations

import hashlib

#: Name length limits of the services that get explicit names.
LIMITS = {
    "alb": 32,
    "target_group": 32,
    "sagemaker": 63,
    "schedule": 64,
    "rule": 64,
    "rds": 63,
    "alarm": 255,
    "dashboard": 255,
    "ecs": 255,
    "ecr": 256,
}


def aws_name(*parts: str, kind: str = "sagemaker") -> str:
    """`parts` joined with '-', shortened to the limit of `kind` with a hash suffix when needed."""
    name = "-".join(p.strip("-") for p in parts if p)
    limit = LIMITS[kind]
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:limit - 9].rstrip('-')}-{digest}"
