"""RBAC: only the drift monitor talks to the Kubernetes API, to start its model's training Job.

It may read its model's training CronJob (to copy the job template) and create Jobs, nothing more:
no list, no watch, no delete, no pods, no secrets. Every other workload has a ServiceAccount with no
role and no mounted token.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_kubernetes.rbac.v1 import PolicyRuleArgs


@dataclass(frozen=True)
class Permission:
    """One RBAC rule: verbs on a resource of an API group, optionally on named objects only."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]
    names: tuple[str, ...] = ()


def retrain_permissions(cronjob: str) -> tuple[Permission, ...]:
    """What starting a training Job from the CronJob `cronjob` needs: get that CronJob, create Jobs.

    `create` cannot be narrowed by name (the Job does not exist yet); `get` is narrowed to the one CronJob.
    """
    return (
        Permission("batch", "jobs", ("create",)),
        Permission("batch", "cronjobs", ("get",), (cronjob,)),
    )


def rules(permissions: tuple[Permission, ...]) -> list[PolicyRuleArgs]:
    """The typed rules of a Role."""
    return [PolicyRuleArgs(api_groups=[p.api_group], resources=[p.resource], verbs=list(p.verbs),
                           resource_names=list(p.names) or None) for p in permissions]
