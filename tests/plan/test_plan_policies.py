"""Each policy as a pure function over a hand-built graph: one passing and one failing case, no Pulumi runtime."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import policies
from infra.policies import (
    MODEL_REGISTRY,
    MONITORING,
    PLATFORM,
    POLICIES,
    SECRET,
    SERVING_ENDPOINT,
    Context,
    Graph,
    evaluate,
    looks_secret,
    model_named,
)

STACK_URN = "urn:pulumi:test::shipyard::pulumi:pulumi:Stack::shipyard-test"
DEV = Context(environment="dev", models=("churn", "demand"))
PROD = Context(environment="prod", models=("churn", "demand"))


def res(type_: str, name: str, inputs: dict[str, Any] | None = None, parent: dict[str, Any] | None = None,
        **extra: Any) -> dict[str, Any]:
    """A captured resource as `plan --json` prints it."""
    return {"urn": f"urn:pulumi:test::shipyard::{type_}::{name}", "type": type_, "name": name,
            "parent": parent["urn"] if parent else STACK_URN, "dependencies": [], "inputs": inputs or {},
            "protect": False, "retain_on_delete": False, **extra}


PLATFORM_R = res(PLATFORM, "shipyard-test")
REGISTRY = res(MODEL_REGISTRY, "shipyard-test-registry", parent=PLATFORM_R)
CHURN_SERVING = res(SERVING_ENDPOINT, "shipyard-test-churn-serving", parent=PLATFORM_R)
DEMAND_MONITORING = res(MONITORING, "shipyard-test-demand-monitoring", parent=PLATFORM_R)
COMPONENTS = [PLATFORM_R, REGISTRY, CHURN_SERVING, DEMAND_MONITORING]


def graph(*resources: dict[str, Any], outputs: dict[str, Any] | None = None, context: Context = DEV) -> Graph:
    return Graph([*COMPONENTS, *resources], outputs or {}, context)


def findings(check: Any, *resources: dict[str, Any], **kwargs: Any) -> list[str]:
    return [f.message for f in check(graph(*resources, **kwargs))]


def deployment(name: str, container: dict[str, Any], parent: dict[str, Any] = REGISTRY) -> dict[str, Any]:
    return res("kubernetes:apps/v1:Deployment", name,
               {"spec": {"template": {"spec": {"containers": [{"name": name, **container}]}}}}, parent)


# --- model names, markers ---------------------------------------------------------------------------


@pytest.mark.parametrize(("component", "expected"), [
    ("shipyard-dev-churn-serving", "churn"),
    ("shipyard-prod-churn", "churn"),
    ("churn", "churn"),
    ("shipyard-dev-churn-v2-monitoring", "churn-v2"),  # the longest model name that fits
    ("shipyard-dev-churner-serving", None),
])
def test_model_named_finds_the_model_in_a_component_name(component: str, expected: str | None) -> None:
    assert model_named(component, ["churn", "churn-v2", "demand"]) == expected


def test_markers_match_what_the_capture_writes() -> None:
    from infra import plan_capture

    assert (policies.SECRET, policies.UNKNOWN) == (plan_capture.SECRET, plan_capture.UNKNOWN)


# --- (a) no plaintext secrets -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["password", "dbPassword", "MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY",
                                 "apiKey", "api_key", "secretString", "token", "privateKey", "credentials"])
def test_secret_looking_keys(key: str) -> None:
    assert looks_secret(key)


@pytest.mark.parametrize("key", ["secretName", "secretKeyRef", "AWS_ACCESS_KEY_ID", "kmsKeyId", "passwordSecretArn",
                                 "skipCredentialsValidation", "key", "name", "tokenExpirationSeconds", "tags"])
def test_keys_that_refer_to_or_describe_a_secret_do_not_look_secret(key: str) -> None:
    assert not looks_secret(key)


def test_plaintext_secrets_fail_wherever_they_hide() -> None:
    env = [{"name": "MLFLOW_TRACKING_PASSWORD", "value": "hunter2"}, {"name": "LOG_LEVEL", "value": "info"}]
    ecs = json.dumps([{"name": "mlflow", "image": "x", "environment": [{"name": "DB_PASSWORD", "value": "hunter2"}]}])
    found = findings(
        policies.check_no_plaintext_secrets,
        deployment("mlflow", {"env": env, "args": ["--backend-store-uri", "postgresql://mlflow:hunter2@db:5432/m"]}),
        res("aws:ecs/taskDefinition:TaskDefinition", "task", {"containerDefinitions": ecs}),
        res("kubernetes:core/v1:Secret", "db", {"stringData": {"password": "hunter2", "user": SECRET}}, REGISTRY),
        res("aws:rds/instance:Instance", "db", {"password": "hunter2", "username": "mlflow"}),
        outputs={"models": {"churn": {"api_key": "hunter2"}}},
    )
    assert len(found) == 6, found
    assert all("hunter2" not in message for message in found), "a finding must never echo the secret"
    assert any("MLFLOW_TRACKING_PASSWORD" in m for m in found)
    assert any("URL with a plaintext password" in m for m in found)
    assert any("inputs.stringData.password is not a Pulumi secret" in m for m in found)
    assert any(m.startswith("outputs.models.churn.api_key") for m in found)


def test_secrets_as_pulumi_secrets_references_and_env_expansion_pass() -> None:
    env = [{"name": "MLFLOW_TRACKING_PASSWORD", "value": SECRET},
           {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    assert findings(
        policies.check_no_plaintext_secrets,
        deployment("mlflow", {"env": env, "args": ["postgresql+psycopg2://mlflow:$(DB_PASSWORD)@db:5432/mlflow"],
                              "volumes": [{"secret": {"secretName": "db-credentials"}}]}),
        res("kubernetes:core/v1:Secret", "db", {"data": SECRET}, REGISTRY),
        res("pulumi:providers:aws", "aws", {"skipCredentialsValidation": "true", "accessKey": "[unknown]"}),
        outputs={"tracking_uri": "http://mlflow:5000", "db_url": SECRET},
    ) == []


# --- (b) storage encrypted --------------------------------------------------------------------------

BUCKET = res("aws:s3/bucket:Bucket", "artifacts", {"bucket": "shipyard-artifacts"}, REGISTRY)


def test_unencrypted_storage_fails() -> None:
    found = findings(
        policies.check_storage_encrypted,
        BUCKET,
        res("aws:rds/instance:Instance", "db", {"storageEncrypted": False}, REGISTRY),
        res("aws:sns/topic:Topic", "alerts", {"name": "alerts"}),
        res("aws:sqs/queue:Queue", "events", {}),
    )
    assert len(found) == 4, found


def test_encrypted_storage_passes_and_kubernetes_volumes_are_not_judged() -> None:
    rule = {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}
    sse = res("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "sse",
              {"bucket": "artifacts-1234", "rules": [rule]}, REGISTRY, dependencies=[BUCKET["urn"]])
    inline = res("aws:s3/bucketV2:BucketV2", "logs", {"serverSideEncryptionConfiguration": {"rule": {}}})
    assert findings(
        policies.check_storage_encrypted,
        BUCKET, sse, inline,
        res("aws:rds/instance:Instance", "db", {"storageEncrypted": True}, REGISTRY),
        res("aws:sns/topic:Topic", "alerts", {"kmsMasterKeyId": "alias/aws/sns"}),
        res("aws:sqs/queue:Queue", "events", {"sqsManagedSseEnabled": True}),
        res("kubernetes:core/v1:PersistentVolumeClaim", "data", {"spec": {}}),
    ) == []


# --- (c) nothing public unless asked ----------------------------------------------------------------


def service(name: str, kind: str, parent: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return res("kubernetes:core/v1:Service", name,
               {"metadata": {"annotations": annotations or {}}, "spec": {"type": kind}}, parent)


def test_public_exposure_the_spec_did_not_ask_for_fails() -> None:
    found = findings(
        policies.check_no_public_access,
        service("churn", "LoadBalancer", CHURN_SERVING),
        service("mlflow", "NodePort", REGISTRY),
        res("kubernetes:networking.k8s.io/v1:Ingress", "churn", {"spec": {}}, CHURN_SERVING),
        res("aws:ec2/securityGroup:SecurityGroup", "web", {"ingress": [{"cidrBlocks": ["0.0.0.0/0"]}]}),
        res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "any", {"cidrIpv6": "::/0"}),
        res("aws:lb/loadBalancer:LoadBalancer", "mlflow", {"loadBalancerType": "application"}, REGISTRY),
        res("aws:rds/instance:Instance", "db", {"publiclyAccessible": True}, REGISTRY),
        BUCKET,
    )
    assert len(found) == 8, found
    assert all("the spec does not ask for it" in m for m in found)


def test_private_resources_and_asked_for_exposure_pass() -> None:
    block = res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "artifacts-block",
                {"bucket": "shipyard-artifacts", **dict.fromkeys(policies._PUBLIC_ACCESS_FLAGS, True)}, REGISTRY)
    public_churn = Context(environment="prod", models=("churn", "demand"), public_models=frozenset({"churn"}))
    assert findings(
        policies.check_no_public_access,
        service("churn", "LoadBalancer", CHURN_SERVING),  # churn asks for serving.public
        res("kubernetes:networking.k8s.io/v1:Ingress", "churn", {"spec": {}}, CHURN_SERVING),
        service("mlflow", "ClusterIP", REGISTRY),
        service("internal", "LoadBalancer", REGISTRY, {"networking.gke.io/load-balancer-type": "Internal"}),
        res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "vpc", {"cidrIpv4": "10.0.0.0/16"}),
        res("aws:lb/loadBalancer:LoadBalancer", "mlflow", {"internal": True}, REGISTRY),
        BUCKET, block,
        context=public_churn,
    ) == []


def test_partial_public_access_block_fails_and_networking_private_false_allows_platform_exposure() -> None:
    partial = res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "partial",
                  {"blockPublicAcls": True}, REGISTRY, dependencies=[BUCKET["urn"]])
    assert findings(policies.check_no_public_access, BUCKET, partial) != []
    open_network = Context(environment="dev", private_network=False, models=("churn",))
    lb = res("aws:lb/loadBalancer:LoadBalancer", "mlflow", {}, REGISTRY)
    assert findings(policies.check_no_public_access, lb, context=open_network) == []
    # ... but a serving endpoint still needs its model's serving.public.
    assert findings(policies.check_no_public_access, service("churn", "NodePort", CHURN_SERVING),
                    context=open_network) != []


# --- (d) stateful resources protected ---------------------------------------------------------------


def test_unprotected_state_fails() -> None:
    found = findings(
        policies.check_state_protected,
        res("kubernetes:apps/v1:StatefulSet", "postgresql", {}, REGISTRY),
        res("kubernetes:core/v1:Secret", "db", {"data": SECRET}, REGISTRY),
        res("aws:kms/key:Key", "key", {}),
    )
    assert len(found) == 3, found


def test_protected_or_retained_state_passes_and_other_secrets_are_not_state() -> None:
    assert findings(
        policies.check_state_protected,
        res("kubernetes:apps/v1:StatefulSet", "postgresql", {}, REGISTRY, protect=True),
        res("kubernetes:core/v1:PersistentVolumeClaim", "artifacts", {}, REGISTRY, retain_on_delete=True),
        res("kubernetes:core/v1:Secret", "api-key", {"data": SECRET}, CHURN_SERVING),
    ) == []


def test_state_protection_is_mandatory_in_prod_only() -> None:
    statefulset = res("kubernetes:apps/v1:StatefulSet", "postgresql", {}, REGISTRY)
    prod = [v for v in evaluate(graph(statefulset, context=PROD)) if v.policy == "state-protected"]
    dev = [v for v in evaluate(graph(statefulset, context=DEV)) if v.policy == "state-protected"]
    assert [v.mandatory for v in prod] == [True]
    assert dev == []


# --- (e) images pinned, (f) limits ------------------------------------------------------------------

DIGEST = "ghcr.io/shipyard-ml/runtime@sha256:" + "a" * 64


def test_images_by_tag_fail() -> None:
    ecs = json.dumps([{"name": "mlflow", "image": "ghcr.io/x/mlflow:3"}])
    found = findings(
        policies.check_images_pinned,
        deployment("mlflow", {"image": "ghcr.io/shipyard-ml/runtime:0.1.0"}),
        res("aws:ecs/taskDefinition:TaskDefinition", "task", {"containerDefinitions": ecs}),
        res("aws:sagemaker/model:Model", "churn", {"primaryContainer": {"image": "123.dkr.ecr/x:latest"}}),
    )
    assert len(found) == 3, found


def test_images_by_digest_pass_and_pinning_is_advisory_in_prod_only() -> None:
    pod = {"initContainers": [{"name": "wheel", "image": DIGEST}], "containers": [{"name": "train", "image": DIGEST}]}
    job = {"spec": {"template": {"spec": pod}}}
    cronjob = res("kubernetes:batch/v1:CronJob", "train", {"spec": {"jobTemplate": job}})
    assert findings(policies.check_images_pinned, cronjob,
                    res("aws:sagemaker/model:Model", "churn", {"containers": [{"image": DIGEST}]})) == []
    tagged = deployment("mlflow", {"image": "mlflow:3", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}})
    assert [v.mandatory for v in evaluate(graph(tagged, context=PROD)) if v.policy == "images-pinned"] == [False]
    assert [v for v in evaluate(graph(tagged, context=DEV)) if v.policy == "images-pinned"] == []


def test_containers_without_limits_fail() -> None:
    found = findings(policies.check_resource_limits,
                     deployment("mlflow", {"image": DIGEST, "resources": {"limits": {"memory": "1Gi"}}}),
                     deployment("serving", {"image": DIGEST}))
    assert found == ["containers[mlflow]: no cpu limit", "containers[serving]: no cpu or memory limit"]


def test_containers_with_limits_pass() -> None:
    limits = {"resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}}
    assert findings(policies.check_resource_limits, deployment("mlflow", {"image": DIGEST, **limits})) == []


# --- the registry -------------------------------------------------------------------------------------


def test_registry_names_are_unique_and_levels_known() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names)) == 6
    for policy in POLICIES:
        for environment in ("dev", "staging", "prod"):
            assert policy.level(environment) in ("mandatory", "advisory", "disabled")
    mandatory_everywhere = {p.name for p in POLICIES if all(p.level(e) == "mandatory" for e in ("dev", "prod"))}
    assert mandatory_everywhere == {"no-plaintext-secrets", "storage-encrypted", "no-public-access"}


def test_evaluate_lists_mandatory_violations_first() -> None:
    violations = evaluate(graph(deployment("mlflow", {"image": "x:1"}), service("m", "NodePort", REGISTRY)))
    assert [(v.policy, v.mandatory) for v in violations] == [("no-public-access", True), ("resource-limits", False)]
    assert set(violations[0].to_json()) == {"policy", "urn", "message", "mandatory"}
