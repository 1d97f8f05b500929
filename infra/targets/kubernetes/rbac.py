"""RBAC: only the drift monitor talks to the Kubernetes API, to start its model's training Job.

It may read its model's training CronJob (to copy the job template) and create Jobs, nothing more:
no list, no watch, no delete, no pods, no secrets. RBAC cannot say which Job, so a ValidatingAdmissionPolicy
(`retrain_admission`) does: only Jobs owned by that CronJob, running as the training account and the runtime
image. Every other workload has a ServiceAccount with no role and no mounted token.
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


@dataclass(frozen=True)
class RetrainAdmission:
    """CEL for a ValidatingAdmissionPolicy that narrows the monitor's `create jobs` to its own training Job.

    RBAC cannot say *which* Job may be created; this policy can: a Job the monitor creates must be owned by its
    model's training CronJob, run as the training ServiceAccount and run only the runtime image (exactly what
    `pipelines.adapters.kubernetes_job` copies from the CronJob), so a compromised monitor cannot start
    arbitrary pods with other accounts or images.
    """

    condition: str
    checks: tuple[tuple[str, str], ...]


def retrain_admission(namespace: str, monitor_account: str, cronjob: str, training_account: str,
                      image: str) -> RetrainAdmission:
    """The policy's match condition (requests from the monitor's account) and its checks (expression, message)."""
    pod = "object.spec.template.spec"
    only_image = f"c.image == {image!r}"
    return RetrainAdmission(
        condition=f"request.userInfo.username == 'system:serviceaccount:{namespace}:{monitor_account}'",
        checks=(
            (f"has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, "
             f"r.kind == 'CronJob' && r.name == {cronjob!r})",
             f"the monitor may only start Jobs from the CronJob {cronjob}"),
            (f"has({pod}.serviceAccountName) && {pod}.serviceAccountName == {training_account!r}",
             f"a retraining Job runs as the ServiceAccount {training_account}"),
            (f"{pod}.containers.all(c, {only_image}) && "
             f"(!has({pod}.initContainers) || {pod}.initContainers.all(c, {only_image}))",
             "a retraining Job runs only the platform's runtime image"),
        ),
    )
