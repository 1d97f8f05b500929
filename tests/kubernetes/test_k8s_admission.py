"""The admission policy that narrows the monitor's `create jobs`, evaluated with a real CEL interpreter.

The Job under test is the one `pipelines.adapters.kubernetes_job` builds from the captured training CronJob,
so the policy is checked against exactly what the monitor sends.
"""

from __future__ import annotations

import copy
from typing import Any

import celpy
import pytest
from k8s_helpers import named, of_kind

from infra.stackfile import load_stack
from infra.targets.kubernetes import layout
from pipelines.adapters.kubernetes_job import job_from_cronjob

STACKS = ["k8s-dev", "k8s-prod"]


def failed_checks(policy: dict[str, Any], job: dict[str, Any], username: str) -> list[str] | None:
    """The messages of the checks `job` fails when `username` creates it; None when the policy does not apply."""
    env = celpy.Environment()
    activation = {"object": celpy.json_to_cel(job), "request": celpy.json_to_cel({"userInfo": {"username": username}})}
    spec = policy["spec"]
    if not all(env.program(env.compile(c["expression"])).evaluate(activation) for c in spec["matchConditions"]):
        return None
    return [v["message"] for v in spec["validations"]
            if not env.program(env.compile(v["expression"])).evaluate(activation)]


def retraining_models(project, stack: str) -> list[str]:
    spec = load_stack(stack, project_dir=project).spec
    return [m.name for m in spec.models if m.monitoring.retrain_on_drift]


@pytest.mark.parametrize("stack", STACKS)
def test_the_job_the_monitor_starts_passes_and_nothing_else_does(captured, project, stack: str) -> None:
    capture = captured(stack)
    spec = load_stack(stack, project_dir=project).spec
    namespace = layout.namespace_name(spec)
    models = retraining_models(project, stack)
    assert models and len(of_kind(capture, "ValidatingAdmissionPolicy")) == len(models)
    for model in models:
        policy = named(capture, "ValidatingAdmissionPolicy", f"{namespace}-{model}-retrain")
        cronjob = {**named(capture, "CronJob", layout.train_cronjob(model))}
        cronjob["metadata"] = {**cronjob["metadata"], "uid": "0f0e0d0c-0000-4000-8000-000000000001"}  # set by the API
        monitor = f"system:serviceaccount:{namespace}:{layout.drift_cronjob(model)}"
        job = job_from_cronjob(cronjob, name=f"{model}-train-retrain-1", reason="drift")
        assert failed_checks(policy, job, monitor) == []

        other_image = copy.deepcopy(job)
        other_image["spec"]["template"]["spec"]["containers"][0]["image"] = "attacker/tools:latest"
        other_account = copy.deepcopy(job)
        other_account["spec"]["template"]["spec"]["serviceAccountName"] = "mlflow"
        orphan = copy.deepcopy(job)
        del orphan["metadata"]["ownerReferences"]
        for tampered in (other_image, other_account, orphan):
            assert len(failed_checks(policy, tampered, monitor)) == 1
        # Anyone else (a CronJob controller, an operator) is not this policy's business.
        assert failed_checks(policy, other_image, f"system:serviceaccount:{namespace}:mlflow") is None

        binding = named(capture, "ValidatingAdmissionPolicyBinding", policy["metadata"]["name"])
        assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
        assert policy["spec"]["matchConstraints"]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": namespace}
