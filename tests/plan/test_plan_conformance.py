"""One set of assertions over every registered target, on each of the repository's stacks for it.

Discovers the stacks in stacks/ per target (infra.targets.TARGETS); a target whose module has not
landed yet, or that no stack names, is skipped with the reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from plan_checks import MAP_FIELDS, ROOT, stacks_by_target, target_module, untranslated_keys

from infra.components import ModelRegistry, Monitoring, ServingEndpoint, TrainingCluster
from infra.plan_capture import UNKNOWN, Capture
from infra.policies import PLATFORM, STATEFUL, Context, Graph, evaluate, model_named
from infra.program import OUTPUT_CONTRACT
from infra.spec import PlatformSpec
from infra.stackfile import load_stack
from infra.targets import TARGETS

STACKS = stacks_by_target(ROOT)
CASES = [(target, stack) for target in TARGETS for stack in STACKS.get(target) or [None]]
ROLE_TOKENS = {c.TOKEN for c in (TrainingCluster, ModelRegistry, ServingEndpoint, Monitoring)}


@dataclass
class Case:
    """One stack of one target, captured."""

    target: str
    stack: str
    spec: PlatformSpec
    capture: Capture

    @property
    def resources(self) -> list[dict]:
        return [r.to_json() for r in self.capture.resources]


@pytest.fixture(params=CASES, ids=[f"{t}:{s}" for t, s in CASES])
def case(request: pytest.FixtureRequest, captured: Callable[[str], Capture]) -> Case:
    target, stack = request.param
    if stack is None:
        pytest.skip(f"target {target!r}: no stack in stacks/ names it")
    target_module(target)
    return Case(target, stack, load_stack(stack, project_dir=ROOT).spec, captured(stack))


def test_stack_names_its_target(case: Case) -> None:
    assert case.spec.target == case.target
    assert case.capture.outputs["target"] == case.target


def test_outputs_contract(case: Case) -> None:
    outputs = case.capture.outputs
    missing = [key for key in OUTPUT_CONTRACT if key not in outputs]
    assert not missing, f"{case.stack}: outputs lack {missing}"
    empty = [key for key in OUTPUT_CONTRACT if key != "region" and outputs[key] in (None, "", {}, [], UNKNOWN)]
    assert not empty, f"{case.stack}: empty contract outputs {empty}"
    assert outputs["region"] == (case.spec.region or ""), "region is the spec's, '' on targets without regions"
    models = [m.name for m in case.spec.models]
    assert sorted(outputs["endpoints"]) == sorted(outputs["models"]) == sorted(models)
    for name in models:
        assert outputs["endpoints"][name] not in ("", UNKNOWN)
        assert all(value not in ("", None, UNKNOWN) for value in outputs["models"][name].values()), name
    assert outputs["environment"] == case.spec.environment


def test_component_set(case: Case) -> None:
    resources = case.resources
    counts = Counter(r["type"] for r in resources)
    models = [m.name for m in case.spec.models]
    assert counts[PLATFORM] == 1
    assert (counts[TrainingCluster.TOKEN], counts[ModelRegistry.TOKEN]) == (1, 1)
    assert counts[ServingEndpoint.TOKEN] == counts[Monitoring.TOKEN] == len(models)

    platform = next(r for r in resources if r["type"] == PLATFORM)
    assert platform["parent"].endswith(f"::pulumi:pulumi:Stack::shipyard-{case.stack}"), "Platform under the stack"
    for role in (r for r in resources if r["type"] in ROLE_TOKENS):
        assert role["parent"] == platform["urn"], f"{role['type']} {role['name']} is not parented to the Platform"
    for token in (ServingEndpoint.TOKEN, Monitoring.TOKEN):
        owners = sorted(str(model_named(r["name"], models)) for r in resources if r["type"] == token)
        assert owners == sorted(models), f"{token}: one per model, named after it (got {owners})"


def test_every_custom_resource_lives_in_a_component(case: Case) -> None:
    by_urn = {r.urn: r for r in case.capture.resources}
    platform = next(r.urn for r in case.capture.resources if r.type == PLATFORM)
    for resource in case.capture.resources:
        if not resource.custom:
            continue
        chain, parent = [], resource.parent
        while parent in by_urn:
            chain.append(by_urn[parent])
            parent = by_urn[parent].parent
        components = [a for a in chain if not a.custom]
        assert components, f"{resource.type} {resource.name} has no component ancestor"
        assert chain[-1].urn == platform, f"{resource.type} {resource.name} is outside the Platform"


def test_no_mandatory_policy_violation(case: Case) -> None:
    graph = Graph(case.resources, case.capture.outputs, Context.from_spec(case.spec))
    mandatory = [v for v in evaluate(graph) if v.mandatory]
    assert not mandatory, "\n".join(f"{v.policy}: {v.urn}: {v.message}" for v in mandatory)


def test_no_untranslated_keys(case: Case) -> None:
    """A snake_case key surviving outside map-typed fields (plan_checks.MAP_FIELDS) was never translated."""
    found = [f"{r['type']} {r['name']}: {path}" for r in case.resources for path in untranslated_keys(r["inputs"])]
    assert not found, "\n".join(found)


def test_untranslated_keys_are_found_outside_map_fields_only() -> None:
    inputs = {
        "metadata": {"labels": {"app_x": "y"}, "annotations": {"prometheus.io/scrape_path": "/m"}},
        "data": {"run_config.json": "{}"},
        "spec": {"min_replicas": 1, "template": {"spec": {"containers": [
            {"env": [{"name": "MLFLOW_TRACKING_URI"}], "resources": {"limits": {"nvidia_com/gpu": 1}}},
            {"image_pull_policy": "Always"}]}}},
    }
    assert untranslated_keys(inputs) == ["spec.min_replicas", "spec.template.spec.containers[1].image_pull_policy"]
    assert {"labels", "data", "limits"} <= MAP_FIELDS


#: What a data-holding resource type looks like, whatever the cloud: databases and their servers, object
#: stores, volumes and file systems, key stores and keys, managed MLflow. Such a type must be in the
#: protection policy's table (infra.policies.STATEFUL), so prod protects and retains it.
HOLDS_DATA = re.compile(
    r"(bucket|rds/|sql/|database|dbfor|persistentvolumeclaim|statefulset|filesystem|efs/|mlflow|"
    r"storageaccount|/disk|vault|kms/key|cryptokey|keyring)", re.IGNORECASE)


def test_every_data_holding_type_is_stateful(case: Case) -> None:
    declared = {r["type"] for r in case.resources}
    holding = {t for t in declared if HOLDS_DATA.search(t.split(":", 1)[1] if ":" in t else t)}
    missing = sorted(t for t in holding if t not in STATEFUL and t not in NOT_STATE)
    assert not missing, f"{case.stack}: add to infra.policies.STATEFUL (or NOT_STATE, with the reason): {missing}"


#: Types the pattern above matches that hold no data of their own, each with the reason.
NOT_STATE = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "a setting of a bucket",
    "aws:s3/bucketVersioning:BucketVersioning": "a setting of a bucket",
    "aws:s3/bucketPolicy:BucketPolicy": "a setting of a bucket",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "a setting of a bucket",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "a setting of a bucket",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "a setting of a bucket",
    "aws:s3/bucketObjectv2:BucketObjectv2": "the wheel and run configurations, uploaded again by every up",
    "aws:rds/subnetGroup:SubnetGroup": "network placement of a database",
    "gcp:storage/bucketObject:BucketObject": "the wheel and run configurations, uploaded again by every up",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "an access grant on a bucket",
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": "an access grant on a key",
    "gcp:kms/keyRing:KeyRing": "a key ring holds no key material and cannot be deleted in GCP",
    "gcp:sql/user:User": "a database login; the password is regenerated into Secret Manager",
}
