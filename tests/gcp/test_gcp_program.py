"""The GCP program under the mock runtime, and the GCP rules: components, outputs, protection, exposure, names."""

from __future__ import annotations

import json

import pytest
from gcp_helpers import LONG_MODEL, LONG_NAME

from infra.merge import with_defaults
from infra.plan_capture import Capture
from infra.policies import Context, Graph, evaluate
from infra.problems import Problem
from infra.program import OUTPUT_CONTRACT
from infra.spec import PlatformSpec
from infra.stackfile import SpecError, load_stack
from infra.targets.gcp import rules
from infra.targets.gcp.names import LIMITS, gcp_name, label_key, label_value, labels
from pipelines.adapters.gcp import data_quality_alert_condition, drift_alert_condition

STACKS = ["gcp-dev", "gcp-staging", "gcp-prod", "gcp-edge"]
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
SERVICE = "gcp:cloudrunv2/service:Service"


def spec_of(project, stack: str) -> PlatformSpec:
    return load_stack(stack, project_dir=project).spec


def of_type(capture: Capture, token: str) -> list:
    return [r for r in capture.resources if r.type == token]


def graph_of(capture: Capture, spec: PlatformSpec) -> Graph:
    return Graph([r.to_json() for r in capture.resources], capture.outputs, Context.from_spec(spec))


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_contract_and_labels(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    outputs = capture.outputs
    assert tuple(outputs)[:len(OUTPUT_CONTRACT)] == OUTPUT_CONTRACT
    assert outputs["artifact_uri"].startswith("gs://") and outputs["artifact_uri"].endswith("/mlflow")
    assert outputs["tracking_uri"] == f"https://{spec.prefix}-mlflow-123456789012.{spec.region}.run.app"
    for name, url in outputs["endpoints"].items():
        assert url == f"https://{spec.prefix}-{name}-123456789012.{spec.region}.run.app/invocations"
    provider = next(r for r in capture.resources if r.type == "pulumi:providers:gcp")
    assert provider.inputs["project"] == spec.gcp_settings.project
    assert json.loads(provider.inputs["defaultLabels"]) == labels(spec.all_tags)


@pytest.mark.parametrize("stack", ["gcp-dev", "gcp-prod"])
def test_no_policy_violation_at_all(captured, project, stack: str) -> None:
    violations = evaluate(graph_of(captured(stack), spec_of(project, stack)))
    assert not violations, "\n".join(f"{v.policy}: {v.urn}: {v.message}" for v in violations)


def test_prod_protects_state_and_dev_can_be_destroyed(captured) -> None:
    prod, dev = captured("gcp-prod"), captured("gcp-dev")
    [instance] = of_type(prod, SQL)
    settings = instance.inputs["settings"]
    assert instance.protect and instance.inputs["deletionProtection"] is True
    assert settings["availabilityType"] == "REGIONAL" and settings["deletionProtectionEnabled"] is True
    assert settings["backupConfiguration"]["pointInTimeRecoveryEnabled"] is True
    assert settings["backupConfiguration"]["backupRetentionSettings"]["retainedBackups"] == 30
    assert settings["ipConfiguration"] == {**settings["ipConfiguration"], "ipv4Enabled": False,
                                           "sslMode": "ENCRYPTED_ONLY"}
    [bucket] = of_type(prod, "gcp:storage/bucket:Bucket")
    assert bucket.protect and bucket.inputs["forceDestroy"] is False
    assert bucket.inputs["publicAccessPrevention"] == "enforced" and bucket.inputs["uniformBucketLevelAccess"]
    assert all(r.inputs["deletionProtection"] is True for r in of_type(prod, SERVICE))
    [dev_instance] = of_type(dev, SQL)
    assert not dev_instance.protect and dev_instance.inputs["deletionProtection"] is False
    assert all(r.inputs["deletionProtection"] is False for r in of_type(dev, SERVICE)), "or destroy fails"


def test_policies_catch_what_the_gcp_resources_would_leak(captured, project) -> None:
    """Each new GCP rule fires on a resource changed the way a mistake would change it."""
    capture, spec = captured("gcp-prod"), spec_of(project, "gcp-prod")
    resources = [r.to_json() for r in capture.resources]
    broken = {SQL: ("settings", "ipConfiguration", "ipv4Enabled", True),
              "gcp:storage/bucket:Bucket": ("publicAccessPrevention", "inherited"),
              SERVICE: ("ingress", "INGRESS_TRAFFIC_ALL")}
    for resource in resources:
        change = broken.get(resource["type"])
        if change:
            node = resource["inputs"]
            for key in change[:-2]:
                node = node[key]
            node[change[-2]] = change[-1]
    resources.append({"urn": "urn:x::gcp:storage/bucketIAMMember:BucketIAMMember::leak", "name": "leak",
                      "type": "gcp:storage/bucketIAMMember:BucketIAMMember", "parent": resources[0]["urn"],
                      "inputs": {"member": "allUsers", "role": "roles/storage.objectViewer"}})
    found = {v.message.split(",")[0] for v in evaluate(Graph(resources, capture.outputs, Context.from_spec(spec)))}
    assert {"Cloud SQL instance with a public IP", "GCS bucket without public access prevention enforced",
            "Cloud Run service with ingress from the internet", "IAM binding grants allUsers"} <= found


def test_public_model_and_auth(captured) -> None:
    """The edge stack's public, unauthenticated model is open; its api_key model falls back to IAM."""
    services = {r.name: r.inputs for r in of_type(captured("gcp-edge"), SERVICE)}
    public, private = services["shipyard-staging-churn"], services["shipyard-staging-price"]
    assert (public["ingress"], public["invokerIamDisabled"]) == ("INGRESS_TRAFFIC_ALL", True)
    assert (private["ingress"], private["invokerIamDisabled"]) == ("INGRESS_TRAFFIC_INTERNAL_ONLY", False)
    assert private["template"]["scaling"] == {"minInstanceCount": 0, "maxInstanceCount": 2}
    assert public["template"]["nodeSelector"] == {"accelerator": "nvidia-l4"}
    assert services["shipyard-staging-mlflow"]["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"


def test_mlflow_reads_its_database_url_from_secret_manager(captured) -> None:
    for stack, secret in (("gcp-dev", "projects/acme-ml-dev/secrets/shipyard-dev-mlflow-db"),
                          ("gcp-edge", "projects/acme-edge-1/secrets/mlflow-db-url")):
        [mlflow] = [r for r in of_type(captured(stack), SERVICE) if r.name.endswith("-mlflow")]
        env = {e["name"]: e for e in mlflow.inputs["template"]["containers"][0]["envs"]}
        assert env["MLFLOW_BACKEND_STORE_URI"]["valueSource"]["secretKeyRef"] == {"secret": secret,
                                                                                   "version": "latest"}
    assert not of_type(captured("gcp-edge"), SQL), "an external database replaces Cloud SQL"


def test_drift_alert_is_the_adapters_condition_and_retraining_reaches_the_workflow(captured, project) -> None:
    capture, spec = captured("gcp-staging"), spec_of(project, "gcp-staging")
    [policy] = [r for r in of_type(capture, "gcp:monitoring/alertPolicy:AlertPolicy") if r.name.endswith("-drift")]
    expected = drift_alert_condition(spec.prefix, "churn")
    condition = policy.inputs["conditions"][0]
    assert condition["displayName"] == expected["displayName"]
    assert condition["conditionThreshold"] == {**expected["conditionThreshold"]} | {
        "thresholdValue": expected["conditionThreshold"]["thresholdValue"]}
    assert len(policy.inputs["notificationChannels"]) == 2, "the e-mail and the retraining channel"
    [data_quality] = [r for r in of_type(capture, "gcp:monitoring/alertPolicy:AlertPolicy")
                      if r.name.endswith("-data-quality")]
    dq = data_quality_alert_condition(spec.prefix, "churn")
    assert data_quality.inputs["conditions"][0]["conditionThreshold"]["filter"] == dq["conditionThreshold"]["filter"]
    assert len(data_quality.inputs["notificationChannels"]) == 1, "it notifies; it never starts retraining"
    [trigger] = of_type(capture, "gcp:eventarc/trigger:Trigger")
    assert trigger.inputs["destination"]["workflow"] == (
        "projects/acme-ml-staging/locations/europe-west1/workflows/shipyard-staging-training-churn")
    [workflow] = of_type(capture, "gcp:workflows/workflow:Workflow")
    steps = json.loads(workflow.inputs["sourceContents"])["main"]["steps"]
    assert [next(iter(s)) for s in steps] == ["init", "validate_data", "train", "evaluate", "register", "done"]


def test_every_name_within_its_limit_for_the_longest_spec(captured) -> None:
    """The longest legal spec: every explicit name fits its kind, service account ids are legal."""
    capture = captured("gcp-long")
    kinds = {"gcp:cloudrunv2/service:Service": "run_service", "gcp:cloudrunv2/job:Job": "run_job",
             "gcp:workflows/workflow:Workflow": "workflow", "gcp:eventarc/trigger:Trigger": "trigger",
             "gcp:compute/subnetwork:Subnetwork": "network"}
    for resource in capture.resources:
        kind = kinds.get(resource.type)
        if kind:
            assert len(resource.inputs["name"]) <= LIMITS[kind], (resource.type, resource.inputs["name"])
    for account in of_type(capture, "gcp:serviceaccount/account:Account"):
        assert __import__("re").match(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", account.inputs["accountId"]), account.inputs
    [bucket] = of_type(capture, "gcp:storage/bucket:Bucket")
    assert len(bucket.name) + 8 <= LIMITS["bucket"]
    assert LONG_NAME in capture.outputs["tracking_uri"] or len(LONG_NAME + LONG_MODEL) > LIMITS["run_service"]


# ------------------------------------------------------------------------------------------------ rules


def _spec(**overrides) -> PlatformSpec:
    data = {"target": "gcp", "region": "europe-west1", "gcp": {"project": "acme-ml-dev"},
            "models": [{"name": "churn"}], **overrides}
    return PlatformSpec.model_validate(with_defaults({}, data)[0])


@pytest.mark.parametrize(("overrides", "path", "words"), [
    ({"region": "europe-west1-b"}, "region", "the region is 'europe-west1'"),
    ({"region": "eu-west-1"}, "region", "not a GCP region"),
    ({"gcp": {}}, "gcp.project", "is required"),
    ({"gcp": {"project": "Acme_ML"}}, "gcp.project", "not a project id"),
    ({"networking": {"existing_network": "projects/acme/networks/shared"}}, "networking.existing_network",
     "not a VPC network"),
    ({"region": "europe-west2", "training": {"size": "gpu", "gpu_count": 1}}, "training.size", "has none"),
    ({"region": "us-central1", "training": {"size": "gpu", "gpu_count": 2}}, "training.gpu_count", "at most 1"),
    ({"training": {"schedule": "0 0 30 2 *"}}, "training.schedule", "never fires"),
    ({"name": "googleml"}, "name", "goog"),
    ({"registry": {"database": {"external_url": {"ref": "mlflow-url"}}}}, "registry.database.external_url.ref",
     "projects/<project>/secrets/<id>"),
])
def test_check_refuses(overrides, path: str, words: str) -> None:
    problems = rules.check(_spec(**overrides))
    assert [p.path for p in problems] == [path] and words in problems[0].message, problems


def test_check_accepts_the_stacks_and_a_network_name() -> None:
    assert rules.check(_spec(networking={"existing_network": "shared-vpc"})) == []
    assert rules.check(_spec(region="us-central1", training={"size": "gpu", "gpu_count": 1})) == []


def test_the_stack_loader_refuses_what_check_refuses(project) -> None:
    stack = project / "stacks" / "Pulumi.gcp-bad.yaml"
    stack.write_text("config:\n  shipyard:target: gcp\n  shipyard:region: us-central1-a\n")
    try:
        with pytest.raises(SpecError) as error:
            load_stack("gcp-bad", project_dir=project)
    finally:
        stack.unlink()
    assert {p.path for p in error.value.problems} == {"region", "gcp.project"}


def test_scheduler_cron_translates_what_unix_cron_spells_differently() -> None:
    assert rules.scheduler_cron("*/15 * * * *") == "*/15 * * * *"
    assert rules.scheduler_cron("5/20 3 * * 7") == "5-59/20 3 * * 0"
    assert rules.scheduler_cron("0 3 * * MON-FRI") == "0 3 * * 1-5"


def test_ignored_names_every_setting_not_honoured() -> None:
    assert rules.ignored(_spec()) == [], "the defaults are honoured"
    spec = _spec(training={"spot": False, "min_nodes": 1},
                 networking={"allowed_cidrs": ["10.0.0.0/8"]},
                 models=[{"name": "churn", "serving": {"auth": "api_key", "target_cpu_utilization": 50,
                                                       "rollout": {"strategy": "canary"}}}])
    paths = {n.path for n in rules.ignored(spec)}
    assert paths == {"training.spot", "training.min_nodes", "networking.allowed_cidrs",
                     "models[0].serving.auth", "models[0].serving.target_cpu_utilization",
                     "models[0].serving.rollout.strategy"}
    prod = _spec(environment="prod")
    assert [n.path for n in rules.ignored(prod)] == ["models[0].serving.rollout.strategy"], \
        "prod's canary default is not done either: it is reported"


def test_names_and_labels() -> None:
    long = gcp_name("p" * 40, "staging", "m" * 40, kind="run_service")
    assert len(long) == LIMITS["run_service"] and long == gcp_name("p" * 40, "staging", "m" * 40, kind="run_service")
    assert gcp_name("shipyard-dev", "mlflow", kind="run_service") == "shipyard-dev-mlflow"
    assert label_key("shipyard:platform") == "shipyard_platform" and label_key("9lives") == "k_9lives"
    assert label_value("ML Platform/Team") == "ml_platform_team" and len(label_value("x" * 100)) == 63
    assert isinstance(Problem.at("region", "x"), Problem)
