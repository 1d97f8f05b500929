"""The Azure program under the mock runtime: components, outputs, protection, policies, names, tags, IAM, wiring."""

from __future__ import annotations

import importlib
import inspect
import json
import uuid

import pytest

from infra.plan_capture import Capture, CapturedResource
from infra.policies import Context, Graph, evaluate
from infra.program import OUTPUT_CONTRACT
from infra.stackfile import SpecError, load_stack
from infra.targets.azure import iam
from infra.targets.azure.names import RULES
from pipelines.adapters.azure import BOOTSTRAP, DRIFT_ALERT
from pipelines.config import from_dict

LONG_MODEL = "m" * 40  # the model name of conftest.LONG_STACK, the longest a spec allows

STACKS = ["azure-dev", "azure-staging", "azure-prod", "azure-edge", "azure-long"]
COMPONENTS = ("shipyard:index:TrainingCluster", "shipyard:index:ModelRegistry", "shipyard:index:ServingEndpoint",
              "shipyard:index:Monitoring")
STORAGE = "azure-native:storage:StorageAccount"
SERVER = "azure-native:dbforpostgresql:Server"
APP = "azure-native:app:ContainerApp"
JOB = "azure-native:app:Job"
ASSIGNMENT = "azure-native:authorization:RoleAssignment"
#: The `<kind>Name` input of each named type, and the rule of `infra.targets.azure.names` it must obey.
NAMED = {STORAGE: ("accountName", "storage"), "azure-native:keyvault:Vault": ("vaultName", "key_vault"),
         "azure-native:containerregistry:Registry": ("registryName", "registry"), SERVER: ("serverName", "postgres"),
         APP: ("containerAppName", "container_app"), JOB: ("jobName", "container_app"),
         "azure-native:app:ManagedEnvironment": ("environmentName", "environment"),
         "azure-native:managedidentity:UserAssignedIdentity": ("resourceName", "identity"),
         "azure-native:resources:ResourceGroup": ("resourceGroupName", "resource_group"),
         "azure-native:monitor:ActionGroup": ("groupShortName", "action_group_short")}


def spec_of(project, stack: str):
    return load_stack(stack, project_dir=project).spec


def of_type(capture: Capture, token: str) -> list[CapturedResource]:
    return [r for r in capture.resources if r.type == token]


def graph_of(capture: Capture, spec) -> Graph:
    return Graph([r.to_json() for r in capture.resources], capture.outputs, Context.from_spec(spec))


def sdk_class(token: str) -> type:
    _, module, name = token.split(":")
    return getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)


@pytest.mark.parametrize("stack", STACKS)
def test_components_provider_and_outputs(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    types = [r.type for r in capture.resources]
    assert {t: types.count(t) for t in COMPONENTS} == {
        "shipyard:index:TrainingCluster": 1, "shipyard:index:ModelRegistry": 1,
        "shipyard:index:ServingEndpoint": len(spec.models), "shipyard:index:Monitoring": len(spec.models)}
    assert types.count("shipyard:azure:Foundation") == 1
    [provider] = [r for r in capture.resources if r.type == "pulumi:providers:azure-native"]
    assert provider.inputs["location"] == spec.region
    outputs = capture.outputs
    assert tuple(outputs) == OUTPUT_CONTRACT
    artifacts = outputs["artifact_uri"]
    assert artifacts.startswith("wasbs://mlflow@") and ".blob.core.windows.net/" in artifacts
    assert outputs["tracking_uri"].startswith("https://") and outputs["tracking_uri"].endswith("azurecontainerapps.io")
    assert outputs["pipeline_package_uri"].startswith("az://packages/")
    for name, url in outputs["endpoints"].items():
        assert url.startswith("https://") and url.endswith("/invocations"), (name, url)


@pytest.mark.parametrize("stack", STACKS)
def test_policies_clean(captured, project, stack: str) -> None:
    """No violation at all in dev and prod; staging only hears that its state is unprotected."""
    spec = spec_of(project, stack)
    violations = evaluate(graph_of(captured(stack), spec))
    assert [v.to_json() for v in violations if v.mandatory] == []
    if spec.environment == "staging":
        assert {v.policy for v in violations} <= {"state-protected"}
    else:
        assert violations == []


def test_policies_catch_open_storage_vault_database_and_ingress(captured, project) -> None:
    spec = spec_of(project, "azure-prod")
    resources = [r.to_json() for r in captured("azure-prod").resources]
    for resource in resources:
        inputs = dict(resource["inputs"])
        if resource["type"] == STORAGE:
            inputs["allowSharedKeyAccess"] = True
        elif resource["type"] == "azure-native:keyvault:Vault":
            inputs["properties"] = {**inputs["properties"], "enablePurgeProtection": False}
        elif resource["type"] == SERVER:
            inputs["network"] = {**inputs["network"], "publicNetworkAccess": "Enabled"}
        elif resource["type"] == "azure-native:app:ManagedEnvironment":
            inputs["vnetConfiguration"] = {**inputs["vnetConfiguration"], "internal": False}
        resource["inputs"] = inputs
    found = {(v.urn.rsplit("$", 1)[1].split("::")[0], v.message.split(",")[0])
             for v in evaluate(Graph(resources, {}, Context.from_spec(spec))) if v.policy == "no-public-access"}
    assert (STORAGE, "storage account accepts shared keys (set allowSharedKeyAccess false; clients use Entra ID)") \
        in found
    assert ("azure-native:keyvault:Vault", "Key Vault without purge protection or open to public networks") in found
    assert (SERVER, "PostgreSQL flexible server with public network access") in found
    assert (APP, "Container App with external ingress on an environment that is not internal to a VNet") in found


def test_refused_stack_reports_every_problem(project) -> None:
    with pytest.raises(SpecError) as caught:
        load_stack("azure-refused", project_dir=project)
    problems = {p.path: p.message for p in caught.value.problems}
    assert problems["region"] == "'West Europe' is a display name; the region is 'westeurope'"
    assert "a Container Apps serverless GPU replica has 1" in problems["training.gpu_count"]
    assert any(path.endswith("serving.public") for path in problems)


def test_prod_state_is_protected_and_retained(captured) -> None:
    capture = captured("azure-prod")
    stateful = [r for r in capture.resources if r.type in (
        STORAGE, SERVER, "azure-native:dbforpostgresql:Database", "azure-native:storage:BlobContainer",
        "azure-native:keyvault:Vault", "azure-native:containerregistry:Registry")]
    assert len(stateful) == 10
    assert all(r.protect and r.retain_on_delete for r in stateful), [r.name for r in stateful if not r.protect]
    [server] = of_type(capture, SERVER)
    assert server.inputs["highAvailability"]["mode"] == "ZoneRedundant"
    assert server.inputs["backup"] == {"backupRetentionDays": 30, "geoRedundantBackup": "Enabled"}
    assert server.inputs["administratorLoginPassword"] == "[secret]"
    assert server.inputs["network"]["publicNetworkAccess"] == "Disabled"


def test_dev_state_is_disposable(captured) -> None:
    capture = captured("azure-dev")
    assert not any(r.protect or r.retain_on_delete for r in capture.resources)
    [server] = of_type(capture, SERVER)
    assert server.inputs["highAvailability"]["mode"] == "Disabled"
    assert server.inputs["sku"] == {"name": "Standard_B1ms", "tier": "Burstable"}


@pytest.mark.parametrize("stack", ["azure-dev", "azure-prod"])
def test_storage_private_keyless_versioned(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    [account] = of_type(capture, STORAGE)
    inputs = account.inputs
    assert (inputs["allowBlobPublicAccess"], inputs["allowSharedKeyAccess"], inputs["minimumTlsVersion"]) == (
        False, False, "TLS1_2")
    assert inputs["networkRuleSet"]["defaultAction"] == "Deny"
    [service] = of_type(capture, "azure-native:storage:BlobServiceProperties")
    assert service.inputs["isVersioningEnabled"] is True and service.inputs["deleteRetentionPolicy"]["enabled"]
    [policy] = of_type(capture, "azure-native:storage:ManagementPolicy")
    delete = policy.inputs["policy"]["rules"][0]["definition"]["actions"]["version"]["delete"]
    assert delete == {"daysAfterCreationGreaterThan": spec.registry.artifacts.noncurrent_version_retention_days}
    containers = {r.inputs["containerName"]: r.inputs["publicAccess"]
                  for r in of_type(capture, "azure-native:storage:BlobContainer")}
    assert containers == dict.fromkeys(("mlflow", "packages", "inference", "reports", "data"), "None")


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_is_tagged(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    azure = [r for r in capture.resources if r.type.startswith("azure-native:")]
    taggable = [r for r in azure if "tags" in inspect.signature(sdk_class(r.type)._internal_init).parameters]
    assert len(taggable) > 20
    assert [r.name for r in taggable if r.inputs.get("tags") != spec.all_tags] == []


@pytest.mark.parametrize("stack", STACKS)
def test_names_within_azure_rules(captured, stack: str) -> None:
    capture = captured(stack)
    checked = 0
    for resource in capture.resources:
        if resource.type in NAMED:
            key, kind = NAMED[resource.type]
            name = resource.inputs[key]
            assert RULES[kind].accepts(name), f"{resource.type} {name!r} breaks the {kind} rule"
            checked += 1
    assert checked >= 10
    if stack == "azure-long":
        apps = [r.inputs["containerAppName"] for r in of_type(capture, APP)]
        assert any(name.startswith("pppp") and len(name) == 32 for name in apps), apps
        assert LONG_MODEL not in " ".join(apps)


@pytest.mark.parametrize("stack", ["azure-dev", "azure-prod", "azure-edge"])
def test_role_assignments_are_narrow_and_stable(captured, stack: str) -> None:
    capture = captured(stack)
    assignments = of_type(capture, ASSIGNMENT)
    names = [r.inputs["roleAssignmentName"] for r in assignments]
    assert len(set(names)) == len(names) and all(uuid.UUID(n) for n in names)
    assert all(r.inputs["principalType"] == "ServicePrincipal" for r in assignments)
    scopes = [r.inputs["scope"] for r in assignments]
    assert not any(scope.endswith("/resourceGroups/" + scope.rsplit("/", 1)[-1]) for scope in scopes), \
        "no role on a whole resource group"
    contributor = iam.ROLES["blob_contributor"]
    serving_writes = {r.inputs["scope"].rsplit("/", 1)[-1] for r in assignments
                      if "-serving-" in r.name and r.inputs["roleDefinitionId"].endswith(contributor)}
    assert serving_writes == {"inference"}, "serving writes its inference logs only"


@pytest.mark.parametrize("stack", ["azure-dev", "azure-prod"])
def test_jobs_run_the_wheel_with_valid_run_configs(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    uploads = {r.name: r.inputs for r in capture.resources if r.type == "pulumi-python:dynamic:Resource"}
    package = capture.outputs["pipeline_package_uri"]
    for model in spec.models:
        config = uploads[f"{spec.prefix}-config-{model.name}"]
        document = json.loads(config["text"])
        run = from_dict(document)
        assert run.model_name == model.registered_model and run.sinks[0].startswith("azure-monitor:/subscriptions/")
        assert document["retrain"].startswith("container-apps-job:") == model.monitoring.retrain_on_drift
        [train] = [r for r in of_type(capture, JOB) if r.inputs["jobName"].startswith(f"{spec.prefix}-train")
                   and model.name in r.inputs["jobName"]]
        command = train.inputs["template"]["containers"][0]["command"]
        assert command[:3] == ["python", "-c", BOOTSTRAP] and command[3] == package
        assert command[4:] == ["run", "--config", f"az://packages/{config['blob']}", "--reason", "schedule"]
        assert train.inputs["configuration"]["scheduleTriggerConfig"]["cronExpression"] == spec.training.schedule
        env = {e["name"] for e in train.inputs["template"]["containers"][0]["env"]}
        assert {"AZURE_CLIENT_ID", "AZURE_STORAGE_ACCOUNT_NAME", "SHIPYARD_AZURE_MONITOR_ENDPOINT"} <= env


def test_serving_scales_within_bounds_and_rolls_out(captured, project) -> None:
    capture, spec = captured("azure-staging"), spec_of(project, "azure-staging")
    [served] = [r for r in of_type(capture, APP) if "mlflow" not in r.name]
    model = spec.models[0]
    scale = served.inputs["template"]["scale"]
    assert (scale["minReplicas"], scale["maxReplicas"]) == (model.serving.min_replicas, model.serving.max_replicas)
    assert scale["rules"][0]["custom"]["metadata"] == {"type": "Utilization",
                                                        "value": str(model.serving.target_cpu_utilization)}
    assert served.inputs["configuration"]["activeRevisionsMode"] == "Multiple"
    suffix = served.inputs["template"]["revisionSuffix"]
    [weight] = served.inputs["configuration"]["ingress"]["traffic"]
    assert (weight["revisionName"], weight["weight"], weight["label"], weight["latestRevision"]) == (
        f"{served.inputs['containerAppName']}--{suffix}", 100, "stable", False)
    [edge] = [r for r in of_type(captured("azure-edge"), APP) if "mlflow" not in r.name]
    assert edge.inputs["template"]["scale"]["minReplicas"] == 0
    assert {"name": "SHIPYARD_API_KEY", "secretRef": "api-key"} in edge.inputs["template"]["containers"][0]["env"]


def test_drift_alert_uses_the_shared_definition(captured) -> None:
    capture = captured("azure-prod")
    alerts = {r.inputs["ruleName"]: r.inputs for r in of_type(capture, "azure-native:monitor:MetricAlert")}
    drift = alerts["shipyard-prod-churn-drift"]
    [criterion] = drift["criteria"]["allOf"]
    assert (criterion["metricName"], criterion["operator"], criterion["threshold"], criterion["timeAggregation"]) == (
        DRIFT_ALERT["metric_name"], DRIFT_ALERT["operator"], DRIFT_ALERT["threshold"], DRIFT_ALERT["time_aggregation"])
    assert criterion["dimensions"] == [{"name": "Model", "operator": "Include", "values": ["churn"]}]
    assert criterion["metricNamespace"] == "shipyard/shipyard-prod"
    assert drift["autoMitigate"] is False and drift["windowSize"] == DRIFT_ALERT["window_size"]
    quality = alerts["shipyard-prod-churn-quality-roc_auc"]["criteria"]["allOf"][0]
    assert (quality["operator"], quality["threshold"]) == ("LessThan", 0.75)
    data_quality = alerts["shipyard-prod-churn-data-quality"]["criteria"]["allOf"][0]
    assert (data_quality["metricName"], data_quality["operator"], data_quality["threshold"]) == (
        "shipyard_data_quality_problems", "GreaterThan", 0.0)
    groups = of_type(capture, "azure-native:monitor:ActionGroup")
    assert {g.inputs["emailReceivers"][0]["emailAddress"] for g in groups} == {"ml-oncall@example.com"}
    [hook] = of_type(captured("azure-edge"), "azure-native:monitor:ActionGroup")
    assert hook.inputs["webhookReceivers"][0]["serviceUri"] == "[secret]"


def test_existing_network_and_external_database(captured) -> None:
    capture = captured("azure-edge")
    assert of_type(capture, "azure-native:network:VirtualNetwork") == []
    subnets = of_type(capture, "azure-native:network:Subnet")
    assert {s.inputs["virtualNetworkName"] for s in subnets} == {"hub"}
    assert {s.inputs["resourceGroupName"] for s in subnets} == {"net-rg"}
    assert of_type(capture, SERVER) == [] and of_type(capture, "azure-native:keyvault:Secret") != []
    [mlflow] = [r for r in of_type(capture, APP) if "mlflow" in r.name]
    assert mlflow.inputs["configuration"]["secrets"][0]["keyVaultUrl"] == \
        "https://corp-vault.vault.azure.net/secrets/mlflow-db"
    [environment] = of_type(capture, "azure-native:app:ManagedEnvironment")
    profiles = {p["name"]: p["workloadProfileType"] for p in environment.inputs["workloadProfiles"]}
    assert profiles == {"Consumption": "Consumption", "gpu": "Consumption-GPU-NC24-A100"}
    [train] = of_type(capture, JOB)[:1]
    assert train.inputs["workloadProfileName"] == "gpu"
