"""RBAC: only the drift monitor talks to the Kubernetes API, to start its model's training Job.

It may read its model's training CronJob (to copy the job template) and create Jobs, nothing more:
no list, no watch, no delete, no pods, no secrets. RBAC cannot say which Job, so a ValidatingAdmissionPolicy
(`retrain_admission`) does: only Jobs owned by that CronJob whose pod template is the CronJob's own (same pod
spec: command, args, env, volumes, image, service account, security context...). Every other workload has a
ServiceAccount with no role and no mounted token.
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


#: Labels the Job controller adds to a Job's pod template (the only ones a retraining Job may add).
JOB_CONTROLLER_LABELS = ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name", "controller-uid",
                         "job-name")


@dataclass(frozen=True)
class RetrainAdmission:
    """CEL for a ValidatingAdmissionPolicy that narrows the monitor's `create jobs` to its own training Job.

    RBAC cannot say *which* Job may be created; this policy can. Its parameter (`paramKind`, bound by `paramRef`)
    is the model's training CronJob as the API server holds it, so the checks compare the Job with it: owned by
    that very CronJob (name and uid), the whole pod spec equal to the CronJob's (command, args, env, envFrom,
    volumes and mounts, images, service account, security contexts, scheduling...), the template's labels and
    annotations the CronJob's (plus the Job controller's own labels), the same deadline and retries, one pod.
    That is exactly the Job `pipelines.adapters.kubernetes_job` (or `kubectl create job --from=cronjob/...`)
    builds, and nothing a compromised monitor could change.
    """

    condition: str
    checks: tuple[tuple[str, str], ...]


def retrain_admission(namespace: str, monitor_account: str, cronjob: str) -> RetrainAdmission:
    """The policy's match condition (requests from the monitor's account) and its checks (expression, message),
    with `params` the CronJob `cronjob`."""
    template = "object.spec.template"
    expected = "params.spec.jobTemplate.spec.template"
    labels, want_labels = f"{template}.metadata.labels", f"{expected}.metadata.labels"
    annotations, want_annotations = f"{template}.metadata.annotations", f"{expected}.metadata.annotations"
    job, want_job = "object.spec", "params.spec.jobTemplate.spec"
    return RetrainAdmission(
        condition=f"request.userInfo.username == 'system:serviceaccount:{namespace}:{monitor_account}'",
        checks=(
            ("has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, "
             "r.apiVersion == 'batch/v1' && r.kind == 'CronJob' && r.name == params.metadata.name && "
             "r.uid == params.metadata.uid)",
             f"the monitor may only start Jobs owned by the CronJob {cronjob}"),
            (f"{template}.spec == {expected}.spec",
             f"a retraining Job runs exactly the pod of the CronJob {cronjob} (command, args, env, volumes, "
             "images, service account, security context)"),
            (f"has({labels}) && {want_labels}.all(k, k in {labels} && {labels}[k] == {want_labels}[k]) && "
             f"{labels}.all(k, k in {want_labels} || k in {list(JOB_CONTROLLER_LABELS)!r}) && "
             f"has({annotations}) == has({want_annotations}) && "
             f"(!has({annotations}) || {annotations} == {want_annotations})",
             f"a retraining Job's pods carry the labels and annotations of the CronJob {cronjob}'s"),
            (f"{job}.activeDeadlineSeconds == {want_job}.activeDeadlineSeconds && "
             f"{job}.backoffLimit == {want_job}.backoffLimit && "
             f"(!has({job}.parallelism) || {job}.parallelism <= 1) && "
             f"(!has({job}.completions) || {job}.completions <= 1) && "
             f"(!has({job}.manualSelector) || !{job}.manualSelector)",
             f"a retraining Job runs one pod at a time within the deadline and retries of the CronJob {cronjob}"),
        ),
    )
