"""The AWS target's pure decisions, without any Pulumi runtime: tables, names, policies, definitions, rollouts."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from infra.runconfig import content_key
from infra.spec import ModelSpec, PlatformSpec, RolloutSpec
from infra.targets.aws import iam, jobs, names, network, rollout, rules, sizes
from infra.targets.aws.foundation import ecr_repository_arn, image_suffix, mirrored_image
from infra.targets.aws.monitoring import dashboard_body, quality_comparison, retrain_pattern
from infra.targets.aws.registry import database_secret, database_url, mlflow_containers, service_counts
from infra.targets.aws.rollout import shift_notices, shift_problem, traffic_shift
from infra.targets.aws.serving import cpu_target, replica_bounds
from infra.targets.aws.storage import key_policy, tls_only_policy
from infra.targets.aws.training import dataset_statements, run_config_text
from pipelines.adapters import aws as adapters
from pipelines.config import from_dict
from pipelines.sinks import Metric


def platform(**overrides) -> PlatformSpec:
    return PlatformSpec.model_validate({"target": "aws", "region": "eu-west-1", "models": [{"name": "churn"}],
                                        **overrides})


# ------------------------------------------------------------------------------------------------ sizes, names


@pytest.mark.parametrize("size_class", ["small", "medium", "large", "gpu"])
def test_every_size_has_every_capacity(size_class: str) -> None:
    row = sizes.size(size_class)
    assert all(t.startswith("ml.") for t in (row.training, row.processing, row.serving))
    assert row.database.startswith("db.") and row.mlflow_server in ("Small", "Medium", "Large")
    assert (row.fargate_cpu, row.fargate_memory) in {(512, 1024), (1024, 2048), (2048, 4096)}


def test_gpu_training_instance_by_gpu_count() -> None:
    assert sizes.training_instance("medium", 0) == "ml.m5.xlarge"
    assert [sizes.training_instance("gpu", n) for n in (1, 2, 4, 8)] == [
        "ml.g5.xlarge", "ml.g5.12xlarge", "ml.g5.12xlarge", "ml.g5.48xlarge"]


def test_volume_kms_only_on_ebs_instances() -> None:
    assert sizes.takes_volume_kms_key("ml.m5.large") and not sizes.takes_volume_kms_key("ml.g5.xlarge")


def test_long_names_are_shortened_stably() -> None:
    assert names.aws_name("shipyard-dev", "churn") == "shipyard-dev-churn"
    long = names.aws_name("a" * 40 + "-prod", "mlflow", kind="alb")
    assert len(long) == 32 and long == names.aws_name("a" * 40 + "-prod", "mlflow", kind="alb")
    assert long != names.aws_name("a" * 40 + "-dev", "mlflow", kind="alb")


# ------------------------------------------------------------------------------------------------ network


def test_subnets_are_carved_from_the_vpc() -> None:
    assert network.subnet_cidrs("10.42.0.0/16", 3) == ["10.42.0.0/20", "10.42.16.0/20", "10.42.32.0/20"]
    with pytest.raises(ValueError, match="too small"):
        network.subnet_cidrs("10.0.0.0/28", 2)


def test_endpoint_services_per_registry_mode() -> None:
    assert "secretsmanager" in network.interface_endpoints("self-hosted")
    assert "mlflow" in network.interface_endpoints("sagemaker")
    assert network.endpoint_service("eu-west-1", "experiments") == "aws.sagemaker.eu-west-1.experiments"
    assert network.endpoint_service("eu-west-1", "ecr.dkr") == "com.amazonaws.eu-west-1.ecr.dkr"


# ------------------------------------------------------------------------------------------------ images


def test_images_are_mirrored_into_ecr_keeping_tag_or_digest() -> None:
    digest = "sha256:" + "a" * 64
    repo = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shipyard-prod-runtime"
    assert mirrored_image(f"ghcr.io/x/runtime@{digest}", repo) == f"{repo}@{digest}"
    assert mirrored_image("ghcr.io/x/runtime:0.1.0", repo) == f"{repo}:0.1.0"
    assert mirrored_image("localhost:5000/runtime", repo) == f"{repo}:latest"
    existing = "123456789012.dkr.ecr.us-west-2.amazonaws.com/ml/runtime:2.0.0"
    assert mirrored_image(existing, repo) == existing
    assert ecr_repository_arn(existing) == "arn:aws:ecr:us-west-2:123456789012:repository/ml/runtime"
    assert ecr_repository_arn("ghcr.io/x/runtime:1") is None
    assert image_suffix(f"runtime:1.0@{digest}") == f"@{digest}"


# ------------------------------------------------------------------------------------------------ IAM


def test_statement_refuses_everything_on_everything() -> None:
    with pytest.raises(ValueError, match=r"'\*' on '\*'"):
        iam.statement(["*"], ["*"])
    assert iam.allows_everything(iam.document([{"Effect": "Allow", "Action": "*", "Resource": "*"}]))
    assert not iam.allows_everything(iam.document([iam.statement(["s3:GetObject"], ["*"])]))


def test_s3_access_is_scoped_to_prefixes() -> None:
    listing, read, write = iam.s3_access("arn:aws:s3:::b", read=["packages"], write=["mlflow/"])
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["mlflow/*", "packages/*", "mlflow", "packages"]}}
    assert read["Resource"] == ["arn:aws:s3:::b/packages/*"] and write["Resource"] == ["arn:aws:s3:::b/mlflow/*"]


def test_trust_policy_is_bound_to_the_account() -> None:
    (trust,) = iam.assume_role("sagemaker.amazonaws.com", "123456789012")["Statement"]
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_pipeline_role_passes_only_the_job_role() -> None:
    create, passing, use, grant = iam.run_pipeline_jobs("eu-west-1", "1", ["arn:aws:iam::1:role/jobs"], "key")
    assert all(r.endswith("/pipelines-*") for r in create["Resource"])
    assert passing["Resource"] == ["arn:aws:iam::1:role/jobs"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert use["Resource"] == grant["Resource"] == ["key"]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_key_and_bucket_policies() -> None:
    statements = key_policy("123456789012", "eu-west-1")["Statement"]
    assert [s["Sid"] for s in statements] == ["AccountAdministersThroughIam", "CloudWatchLogs",
                                              "CloudWatchAlarmsToEncryptedTopic"]
    (deny,) = tls_only_policy("arn:aws:s3:::b")["Statement"]
    assert deny["Effect"] == "Deny" and deny["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]


def test_dataset_in_another_bucket_is_readable() -> None:
    listing, read = dataset_statements("s3://data/churn/train.csv")
    assert read["Resource"] == ["arn:aws:s3:::data/churn/train.csv*"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["churn/train.csv*"]}}
    assert dataset_statements("demo://classification") == []


# ------------------------------------------------------------------------------------------------ registry


def test_database_secret_holds_a_psycopg2_url() -> None:
    assert database_url("pw", "db.local") == "postgresql+psycopg2://mlflow:pw@db.local:5432/mlflow"
    secret = json.loads(database_secret("pw", "db.local"))
    assert secret["url"] == database_url("pw", "db.local") and secret["password"] == "pw"


def _containers(migrate: bool) -> list[dict]:
    return mlflow_containers(image="img", region="eu-west-1", log_group="lg", artifact_root="s3://b/mlflow",
                             workers=2, backend_secret="arn:secret:url::", allowed_hosts=["alb", "alb:80"],
                             migrate=migrate)


def test_mlflow_container_takes_its_database_from_a_secret() -> None:
    (container,) = _containers(migrate=False)
    assert container["entryPoint"] == ["mlflow"] and container["command"][:1] == ["server"]
    assert container["secrets"] == [{"name": "MLFLOW_BACKEND_STORE_URI", "valueFrom": "arn:secret:url::"}]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["MLFLOW_SERVER_ALLOWED_HOSTS"] == "alb,alb:80,localhost:*,127.0.0.1:*"  # + SSM port forwarding
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert (env["AWS_DEFAULT_REGION"], env["AWS_REGION"]) == ("eu-west-1", "eu-west-1")
    assert "dependsOn" not in container


def test_the_leader_task_migrates_the_schema_before_its_server_starts() -> None:
    upgrade, server = _containers(migrate=True)
    assert upgrade["name"] == "migrate" and upgrade["essential"] is False
    assert upgrade["command"] == ['exec mlflow db upgrade "$MLFLOW_BACKEND_STORE_URI"']
    assert upgrade["secrets"] == server["secrets"]
    assert server["dependsOn"] == [{"containerName": "migrate", "condition": "SUCCESS"}]
    assert service_counts(high_availability=False) == (1, 0) and service_counts(high_availability=True) == (1, 1)


# ------------------------------------------------------------------------------------------------ training


@pytest.mark.parametrize(("cron", "expected"), [
    ("0 3 * * 0", "cron(0 3 ? * SUN *)"),
    ("*/15 * * * *", "cron(0/15 * * * ? *)"),
    ("0 3 * * 1-5", "cron(0 3 ? * MON-FRI *)"),
    ("0 3 * * 0-7", "cron(0 3 * * ? *)"),          # every day, not Sundays only
    ("0 3 * * 0-6", "cron(0 3 * * ? *)"),
    ("0 0 1 * *", "cron(0 0 1 * ? *)"),
    ("0 6 * * 1,3,7", "cron(0 6 ? * SUN-MON,WED *)"),
    ("0 6 * * 5-7", "cron(0 6 ? * SUN,FRI-SAT *)"),
    ("0 6 * * */2", "cron(0 6 ? * SUN,TUE,THU,SAT *)"),
    ("5,35 */6 1-7 */3 *", "cron(5,35 0/6 1-7 1/3 ? *)"),
    ("0 0 1 * 0-7", "cron(0 0 * * ? *)"),          # cron ORs the day fields: every weekday matches
])
def test_cron_becomes_eventbridge_cron(cron: str, expected: str) -> None:
    assert jobs.aws_cron(cron) == expected


@pytest.mark.parametrize("cron", ["0 0 1 * 1", "0 0 1-15 * 1-5"])
def test_cron_without_an_eventbridge_form_is_refused(cron: str) -> None:
    with pytest.raises(ValueError, match="EventBridge"):
        jobs.aws_cron(cron)


def test_run_config_is_what_the_pipelines_read() -> None:
    spec = platform()
    text = run_config_text(spec, spec.models[0], tracking_uri="http://mlflow", bucket="b")
    config = from_dict(json.loads(text))
    assert config.tracking_uri == "http://mlflow" and config.retrain == "none"
    assert config.inference_log_uri == "s3://b/inference/churn" and config.reports_uri == "s3://b/reports/churn"
    assert config.sinks == ["cloudwatch:Shipyard/shipyard-dev"]
    key = content_key("configs/churn", "run.json", text)
    assert key.startswith("configs/churn/") and key == content_key("configs/churn", "run.json", text)
    assert key != content_key("configs/churn", "run.json", text + " ")


CTX = jobs.JobContext(image="img", role_arn="role", subnets=("s1", "s2"), security_groups=("sg",),
                      kms_key_arn="key", package_prefix="s3://b/packages/h/", config_prefix="s3://b/configs/c/h/",
                      output_uri="s3://b/training/c/", max_runtime_seconds=600, region="eu-west-1",
                      spot=True)


def test_training_pipeline_definition() -> None:
    definition = jobs.training_pipeline(CTX, training_instance="ml.g5.xlarge", processing_instance="ml.m5.large")
    assert definition["Parameters"] == [{"Name": "Reason", "Type": "String", "DefaultValue": "schedule"}]
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert [s.get("DependsOn", []) for s in definition["Steps"]] == [[], ["ValidateData"], ["Train"], ["Evaluate"]]
    train = steps["Train"]["Arguments"]
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200}
    assert "VolumeKmsKeyId" not in train["ResourceConfig"] and train["OutputDataConfig"]["KmsKeyId"] == "key"
    validate = steps["ValidateData"]["Arguments"]
    assert validate["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "key"
    assert [i["S3Input"]["LocalPath"] for i in validate["ProcessingInputs"]] == [
        "/opt/ml/processing/input/package", "/opt/ml/processing/input/config"]
    assert "exec python -m pipelines validate-data --config /opt/ml/processing/input/config/run.json" in \
        validate["AppSpecification"]["ContainerEntrypoint"][2]
    register = steps["Register"]["Arguments"]["AppSpecification"]["ContainerEntrypoint"][2]
    assert "register --config" in register and "promote --config" in register


def test_monitoring_pipeline_is_one_monitor_step() -> None:
    (step,) = jobs.monitoring_pipeline(CTX, processing_instance="ml.m5.large")["Steps"]
    assert step["Name"] == "Monitor" and step["Type"] == "Processing"
    assert step["Arguments"]["AppSpecification"]["ContainerEntrypoint"][2].endswith(
        "exec python -m pipelines monitor --config /opt/ml/processing/input/config/run.json")


# ------------------------------------------------------------------------------------------------ serving


@pytest.mark.parametrize(("strategy", "fleet", "kind", "step", "wait"), [
    ("canary", 4, "CANARY", 1, 600), ("canary", 20, "CANARY", 3, 600), ("rolling", 4, "LINEAR", 1, 150),
    ("rolling", 8, "LINEAR", 2, 150), ("rolling", 3, "LINEAR", 1, 200), ("rolling", 1, "ALL_AT_ONCE", None, 600),
    ("blue_green", 2, "ALL_AT_ONCE", None, 600)])
def test_rollouts_become_blue_green_traffic_shifts(strategy: str, fleet: int, kind: str, step: int | None,
                                                   wait: int) -> None:
    """Steps are whole instances of the new fleet (canary 15% rounded down, at least one; rolling 25%)."""
    shift = traffic_shift(RolloutSpec(strategy=strategy, canary_percent=15, bake_minutes=10), fleet)
    assert (shift.type, shift.step_instances, shift.wait_seconds) == (kind, step, wait)
    assert 600 <= shift.timeout_seconds <= 14400
    assert shift_problem(shift, fleet) is None


def test_long_bakes_are_capped_at_sagemakers_limits() -> None:
    rollout = RolloutSpec(strategy="canary", bake_minutes=240)
    shift = traffic_shift(rollout, 2)
    assert shift.wait_seconds == 3600 and shift.timeout_seconds == 9000
    assert "capped at 60" in shift_notices(rollout, 2)["bake_minutes"]


def test_sagemaker_refuses_a_canary_or_linear_step_over_half_the_fleet() -> None:
    """SageMaker's TrafficRoutingConfig: a canary at most half the fleet, a linear step 10-50% of it."""
    canary = traffic_shift(RolloutSpec(strategy="canary", canary_percent=10), 1)
    assert canary.step_instances == 1
    assert "refuses a canary of 1 instance(s) on a new fleet of 1" in shift_problem(canary, 1)
    assert "serving.min_replicas to at least 2" in shift_problem(canary, 1)
    assert shift_problem(traffic_shift(RolloutSpec(strategy="canary", canary_percent=50), 3), 3) is None
    linear = rollout.TrafficShift("LINEAR", 1, 60, 600)
    assert "refuses a linear step of 1 instance(s) on a new fleet of 1" in shift_problem(linear, 1)
    assert "at least 10%" in shift_problem(linear, 11)
    assert shift_problem(linear, 10) is None and shift_problem(linear, 2) is None


def test_rollouts_not_honoured_as_written_are_named() -> None:
    assert "takes 50% of the traffic" in shift_notices(RolloutSpec(strategy="canary", canary_percent=10), 2)[
        "canary_percent"]
    assert shift_notices(RolloutSpec(strategy="canary", canary_percent=10), 10) == {}
    assert shift_notices(RolloutSpec(strategy="canary"), 1) == {}  # refused by check, not a notice
    assert "all traffic at once" in shift_notices(RolloutSpec(strategy="rolling"), 1)["strategy"]
    assert shift_notices(RolloutSpec(strategy="rolling"), 2) == {}


def test_replicas_and_cpu_target() -> None:
    model = ModelSpec.model_validate({"name": "m", "serving": {"min_replicas": 0, "max_replicas": 3,
                                                               "target_cpu_utilization": 60, "size": "medium"}})
    assert replica_bounds(model) == (1, 3)
    assert cpu_target(model) == 240.0


def test_public_endpoints_are_refused_with_the_reason() -> None:
    assert rules.check(platform()) == []
    [problem] = rules.check(platform(models=[{"name": "churn", "serving": {"public": True}}]))
    assert problem.path == "models[0].serving.public" and "is not supported on target 'aws'" in problem.message


# ------------------------------------------------------------------------------------------------ monitoring


def test_alarm_directions_and_retrain_pattern() -> None:
    assert quality_comparison("roc_auc") == "LessThanThreshold"
    assert quality_comparison("rmse") == "GreaterThanThreshold"
    pattern = json.loads(retrain_pattern(["arn:b", "arn:a"]))
    assert pattern["resources"] == ["arn:a", "arn:b"] and pattern["detail-type"] == ["CloudWatch Alarm State Change"]


def test_dashboard_watches_the_verdict_and_the_endpoint() -> None:
    spec = platform()
    widgets = json.loads(dashboard_body(spec, spec.models))["widgets"]
    metrics = json.dumps([w["properties"]["metrics"] for w in widgets])
    assert adapters.VERDICT_METRIC in metrics and "Invocation5XXErrors" in metrics
    assert "shipyard-dev-churn" in metrics and "SEARCH(" in metrics


# ------------------------------------------------------------------------------------------------ adapters


def test_metric_datums_with_and_without_version() -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    datums = adapters.metric_datums([Metric("psi", {"feature": "x1", "p_value": "a"}, 0.3),
                                     Metric("bad", {}, float("inf"))], model="churn", version="4", timestamp=when)
    assert [[d["Name"] for d in datum["Dimensions"]] for datum in datums] == [
        ["Model", "Version", "Feature", "PValue"], ["Model", "Feature", "PValue"]]
    assert {d["Value"] for d in datums} == {0.3}


def test_batches_and_requests() -> None:
    assert [len(b) for b in adapters.batched(list(range(2001)))] == [1000, 1000, 1]
    request = adapters.start_request("pipe", "x" * 2000, "churn")
    assert request["PipelineParameters"] == [{"Name": "Reason", "Value": "x" * 1024}]
    assert len(request["ClientRequestToken"]) == 32
    alarm = adapters.drift_alarm_request("a", namespace="ns", model="churn", actions=["t"])
    assert alarm["AlarmActions"] == alarm["OKActions"] == ["t"] and alarm["MetricName"] == adapters.VERDICT_METRIC


def test_sink_and_trigger_need_their_argument() -> None:
    with pytest.raises(ValueError, match="needs a namespace"):
        adapters.CloudWatchSink()
    with pytest.raises(ValueError, match="needs a pipeline name"):
        adapters.SageMakerPipelineTrigger()


def test_aws_name_shortens_stably_within_each_limit() -> None:
    aws_name = names.aws_name
    prefix, model = "p" * 40 + "-staging", "m" * 40
    for kind, limit in names.LIMITS.items():
        name = aws_name(prefix, model, "monitor-pipeline", kind=kind)
        assert len(name) <= limit and name == aws_name(prefix, model, "monitor-pipeline", kind=kind)
        logical = aws_name(prefix, model, "monitor-pipeline", kind=kind, autonamed=True)
        assert len(logical) + names.AUTONAME_SUFFIX <= limit
    assert aws_name("shop-dev", "churn") == "shop-dev-churn"  # short names are left alone
    assert aws_name(prefix, model, "a", kind="alb") != aws_name(prefix, model, "b", kind="alb")  # hash keeps them apart
    assert aws_name(prefix, model, kind="alb").startswith("pppp")
