"""The AWS target's rules, pure: every refusal (`check`) and every notice (`ignored`), and `shipyard validate`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_helpers import of_type

from infra.merge import with_defaults
from infra.spec import PlatformSpec
from infra.stackfile import SpecError, load_stack
from infra.targets.aws import rules

ROOT = Path(__file__).resolve().parents[2]
EDGE_VPC = "vpc-0abc1234"


def spec(environment: str = "dev", models: list[dict[str, Any]] | None = None, **overrides: Any) -> PlatformSpec:
    """A merged AWS spec (environment defaults applied, as the stack loader does)."""
    overlay = {"target": "aws", "environment": environment, "region": "eu-west-1",
               "models": models or [{"name": "churn"}], **overrides}
    return PlatformSpec.model_validate(with_defaults({}, overlay)[0])


def problems(value: PlatformSpec) -> dict[str, str]:
    return {p.path: p.message for p in rules.check(value)}


def notices(value: PlatformSpec) -> dict[str, str]:
    return {n.path: n.message for n in rules.ignored(value)}


# ------------------------------------------------------------------------------------------------ check


def test_the_defaults_and_the_repository_stacks_pass() -> None:
    assert rules.check(spec()) == [] and rules.check(spec("prod")) == []
    for stack in ("aws-dev", "aws-staging", "aws-prod"):
        assert load_stack(stack, project_dir=ROOT).spec.target == "aws"


@pytest.mark.parametrize(("region", "message"), [
    ("eu-west-1a", "is an availability zone; the region is 'eu-west-1'"),
    ("Ireland", "is not an AWS region"),
])
def test_region_shape(region: str, message: str) -> None:
    assert message in problems(spec(region=region))["region"]


def test_canary_on_a_one_instance_fleet_is_refused_with_the_rule() -> None:
    refused = problems(spec(models=[{"name": "churn", "serving": {"rollout": {"strategy": "canary"}}}]))
    message = refused["models[0].serving.rollout.strategy"]
    assert "SageMaker refuses a canary of 1 instance(s) on a new fleet of 1" in message
    assert "at most 50% of the fleet" in message and "serving.min_replicas to at least 2" in message
    # prod's default canary runs on its default two instances: one of them is the canary
    assert "models[0].serving.rollout.strategy" not in problems(spec("prod"))
    # min_replicas 0 is a fleet of one, like 1
    zero = spec(models=[{"name": "churn", "serving": {"min_replicas": 0, "rollout": {"strategy": "canary"}}}])
    assert "models[0].serving.rollout.strategy" in problems(zero)


def test_existing_network_must_be_a_vpc_id() -> None:
    refused = problems(spec(networking={"existing_network": "my-vpc"}))
    assert "is not a VPC id" in refused["networking.existing_network"]
    assert problems(spec(networking={"existing_network": EDGE_VPC})) == {}


def test_three_zones_in_a_two_zone_region_are_refused() -> None:
    refused = problems(spec(region="us-west-1", aws={"availability_zones": 3}))
    assert "us-west-1 offers new accounts 2 availability zones" in refused["aws.availability_zones"]
    assert problems(spec(region="us-west-1")) == {}


def test_external_database_ref_must_be_a_secret_arn() -> None:
    refused = problems(spec(registry={"database": {"external_url": {"ref": "mlflow-db"}}}))
    assert "must be the ARN of a Secrets Manager secret" in refused["registry.database.external_url.ref"]


def test_names_aws_refuses_are_refused_at_the_key_that_makes_them() -> None:
    """RDS identifiers and ECR repositories refuse '--'; load balancer names may not begin with 'internal-'."""
    doubled = problems(spec(name="ship--yard"))["name"]
    assert "the ecr name 'ship--yard-dev-runtime'" in doubled and "the rds name 'ship--yard-dev-mlflow'" in doubled
    assert "the alb name 'internal-dev-mlflow'" in problems(spec(name="internal"))["name"]
    # without an RDS instance or a load balancer (SageMaker's MLflow), only the ECR repository's rule is left
    managed = rules.generated_names(spec(name="ship--yard", aws={"registry_mode": "sagemaker"}))
    assert {kind for _, kind, _ in managed} == {"ecr", "sagemaker", "schedule", "rule"}


def test_the_longest_legal_spec_makes_only_names_aws_accepts() -> None:
    longest = spec("staging", name="p" * 20 + "-" + "q" * 19, models=[{"name": "m" * 40}])
    names = rules.generated_names(longest)
    assert len(names) >= 10 and all(len(name) <= rules.LIMITS[kind] for _, kind, name in names)
    assert problems(longest) == {}


def test_schedules_eventbridge_cannot_express_are_refused() -> None:
    refused = problems(spec(training={"schedule": "0 3 1 * 1"}))
    assert "EventBridge cannot match day-of-month OR day-of-week" in refused["training.schedule"]


def test_public_endpoint_is_refused() -> None:
    refused = problems(spec(models=[{"name": "churn", "serving": {"public": True}}]))
    assert "is not supported on target 'aws'" in refused["models[0].serving.public"]


# ------------------------------------------------------------------------------------------------ ignored


def test_defaults_make_no_notice() -> None:
    """Not even prod's default canary (10% of two instances is one: 50%), which docs/aws.md explains."""
    assert notices(spec()) == {} and notices(spec("prod")) == {}
    assert notices(spec(models=[{"name": "churn", "serving": {"min_replicas": 2}}])) == {}


@pytest.mark.parametrize(("overrides", "key", "message"), [
    ({"networking": {"private": False}}, "networking.private", "every workload stays on private subnets"),
    ({"training": {"min_nodes": 1}}, "training.min_nodes", "nothing is kept warm"),
    ({"training": {"max_nodes": 4}}, "training.max_nodes", "every SageMaker job runs on one instance"),
    ({"registry": {"artifacts": {"s3_endpoint": "http://minio:9000", "bucket": "b"}}},
     "registry.artifacts.s3_endpoint", "the stack's own S3 bucket"),
    ({"registry": {"artifacts": {"s3_endpoint": "http://minio:9000", "bucket": "b"}}},
     "registry.artifacts.bucket", "the stack's own S3 bucket"),
    ({"aws": {"registry_mode": "sagemaker"}, "registry": {"workers": 4}}, "registry.workers",
     "SageMaker runs the managed MLflow server"),
    ({"aws": {"registry_mode": "sagemaker"}, "registry": {"database": {"size": "large"}}},
     "registry.database.size", "keeps its own backend store"),
    ({"aws": {"registry_mode": "sagemaker"}, "networking": {"allowed_cidrs": ["10.1.0.0/16"]}},
     "networking.allowed_cidrs", "there is no load balancer"),
    ({"registry": {"database": {"storage_gb": 100, "external_url": {"ref": "arn:aws:secretsmanager:eu-west-1:"
                                                                           "123456789012:secret:db"}}}},
     "registry.database.storage_gb", "no RDS instance is created"),
    ({"registry": {"database": {"high_availability": True, "external_url": {"ref": "arn:aws:secretsmanager:"
                                                                                   "eu-west-1:1234567890"
                                                                                   "12:secret:db"}}}},
     "registry.database.high_availability", "only adds a second MLflow task"),
    ({"networking": {"existing_network": EDGE_VPC}, "aws": {"vpc_cidr": "10.9.0.0/16"}}, "aws.vpc_cidr",
     "the VPC's own subnets tagged shipyard:tier=private"),
    ({"networking": {"existing_network": EDGE_VPC}, "aws": {"availability_zones": 3}}, "aws.availability_zones",
     "the VPC's own subnets tagged shipyard:tier=private"),
])
def test_settings_the_target_does_not_honour(overrides: dict[str, Any], key: str, message: str) -> None:
    found = notices(spec(models=[{"name": "churn", "serving": {"min_replicas": 2}}], **overrides))
    assert message in found[key]


def test_settings_honoured_in_their_mode_make_no_notice() -> None:
    self_hosted = spec(models=[{"name": "churn", "serving": {"min_replicas": 2}}], registry={"workers": 4},
                       networking={"allowed_cidrs": ["10.1.0.0/16"]}, aws={"vpc_cidr": "10.9.0.0/16"})
    assert notices(self_hosted) == {}


@pytest.mark.parametrize(("serving", "key", "message"), [
    ({"min_replicas": 0}, "serving.min_replicas", "0 is raised to 1 on AWS"),
    ({"auth": "api_key", "min_replicas": 2}, "serving.auth", "always invoked with IAM"),
    ({"min_replicas": 2, "rollout": {"strategy": "canary", "canary_percent": 10}}, "serving.rollout.canary_percent",
     "the canary takes 50% of the traffic"),
    ({"min_replicas": 2, "rollout": {"bake_minutes": 240}}, "serving.rollout.bake_minutes", "capped at 60"),
    ({"min_replicas": 0}, "serving.rollout.strategy", "shifts all traffic at once"),
    ({"min_replicas": 3, "max_replicas": 3, "rollout": {"strategy": "canary", "canary_percent": 50}},
     "serving.rollout.canary_percent", "the canary takes 33% of the traffic"),
])
def test_serving_settings_not_honoured(serving: dict[str, Any], key: str, message: str) -> None:
    assert message in notices(spec(models=[{"name": "churn", "serving": serving}]))[f"models[0].{key}"]


# ------------------------------------------------------------------------------------------------ the program agrees


@pytest.mark.parametrize("stack", ["aws-prod", "aws-edge", "aws-long"])
def test_generated_names_are_the_programs(captured, project, stack: str) -> None:
    """The names `check` holds to AWS's rules are exactly the ones the program gives (they cannot drift)."""
    capture = captured(stack)
    value = load_stack(stack, project_dir=project).spec
    fields = {"aws:ecr/repository:Repository": "name", "aws:lb/loadBalancer:LoadBalancer": "name",
              "aws:lb/targetGroup:TargetGroup": "name", "aws:ecs/cluster:Cluster": "name",
              "aws:rds/instance:Instance": "identifier", "aws:sagemaker/endpoint:Endpoint": "name",
              "aws:sagemaker/pipeline:Pipeline": "pipelineName", "aws:scheduler/schedule:Schedule": "name",
              "aws:cloudwatch/eventRule:EventRule": "name",
              "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": "trackingServerName"}
    declared = {r.inputs[field] for token, field in fields.items() for r in of_type(capture, token)}
    declared |= {r.inputs["finalSnapshotIdentifier"] for r in of_type(capture, "aws:rds/instance:Instance")
                 if r.inputs.get("finalSnapshotIdentifier")}
    generated = {name for _, _, name in rules.generated_names(value)}
    if not value.is_prod:  # the final snapshot is named in prod only; check holds its name anyway
        generated -= {name for _, kind, name in rules.generated_names(value) if name.endswith("final")}
    assert declared == generated


# ------------------------------------------------------------------------------------------------ shipyard validate


def test_validate_reports_every_target_problem_with_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: shipyard\nruntime: python\n")
    shared = {"name": "shipyard", "models": [{"name": "churn"}]}
    (tmp_path / "stacks" / "shipyard.yaml").write_text(yaml.safe_dump(shared))
    stack = tmp_path / "stacks" / "Pulumi.bad.yaml"
    stack.write_text(yaml.safe_dump({"config": {
        "shipyard:target": "aws", "shipyard:region": "eu-west-1b",
        "shipyard:networking": {"existing_network": "default"},
        "shipyard:models": [{"name": "churn", "serving": {"rollout": {"strategy": "canary"}}}]}}))
    with pytest.raises(SpecError) as caught:
        load_stack("bad", project_dir=tmp_path)
    assert {(Path(p.file).name, p.path) for p in caught.value.problems} == {
        ("Pulumi.bad.yaml", "region"), ("Pulumi.bad.yaml", "networking.existing_network"),
        ("Pulumi.bad.yaml", "models[0].serving.rollout.strategy")}
    run = subprocess.run([sys.executable, "-m", "infra.cli", "validate", "--config", str(stack)],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})  # this tree's infra, wherever it is installed
    assert run.returncode == 1
    assert f"error: {stack}: region: 'eu-west-1b' is an availability zone" in run.stderr
    assert f"error: {stack}: networking.existing_network: 'default' is not a VPC id" in run.stderr
    assert f"error: {stack}: models[0].serving.rollout.strategy: SageMaker refuses a canary" in run.stderr
    assert "3 problem(s); nothing was declared." in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
