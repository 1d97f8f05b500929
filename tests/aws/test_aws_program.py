"""The AWS program under the mock runtime: components, outputs, protection, IAM, encryption, exposure, wiring."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_helpers import by_urn, listify, of_type, one, policy_documents, statements, untranslated_keys

from infra.packaging import build_wheel
from infra.plan_capture import Capture
from infra.policies import Context, Graph, evaluate
from infra.program import OUTPUT_CONTRACT
from infra.stackfile import SpecError, load_stack
from infra.targets.aws import jobs
from pipelines.adapters.aws import DRIFT_ALARM
from pipelines.config import from_dict

STACKS = ["aws-dev", "aws-staging", "aws-prod", "aws-edge", "aws-extdb"]
COMPONENTS = ("shipyard:index:TrainingCluster", "shipyard:index:ModelRegistry", "shipyard:index:ServingEndpoint",
              "shipyard:index:Monitoring")
BUCKET = "aws:s3/bucket:Bucket"
RDS = "aws:rds/instance:Instance"
KEY = "aws:kms/key:Key"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"


def spec_of(project, stack: str):
    return load_stack(stack, project_dir=project).spec


def graph_of(capture: Capture, spec) -> Graph:
    resources = [r.to_json() for r in capture.resources]
    return Graph(resources, capture.outputs, Context.from_spec(spec))


def parent_component(capture: Capture, resource) -> str:
    return by_urn(capture)[resource.parent].type


# ------------------------------------------------------------------------------------------------ structure


@pytest.mark.parametrize("stack", STACKS)
def test_components_and_their_children(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    types = [r.type for r in capture.resources if r.type.startswith("shipyard:")]
    assert {t: types.count(t) for t in COMPONENTS} == {
        "shipyard:index:TrainingCluster": 1, "shipyard:index:ModelRegistry": 1,
        "shipyard:index:ServingEndpoint": len(spec.models), "shipyard:index:Monitoring": len(spec.models)}
    assert types.count("shipyard:aws:Foundation") == 1
    urns = by_urn(capture)
    for resource in capture.resources:
        if resource.type.startswith(("shipyard:", "pulumi:providers:")):
            continue
        assert urns[resource.parent].type.startswith("shipyard:") and urns[resource.parent].type != \
            "shipyard:index:Platform", f"{resource.type} {resource.name} is not owned by a component"
    provider = one(capture, "pulumi:providers:aws")
    assert provider.inputs["region"] == spec.region
    assert json.loads(provider.inputs["defaultTags"])["tags"] == spec.all_tags


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_contract(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    outputs = capture.outputs
    assert tuple(outputs) == OUTPUT_CONTRACT
    assert set(outputs["endpoints"]) == {m.name for m in spec.models}
    for name, url in outputs["endpoints"].items():
        assert url == f"https://runtime.sagemaker.{spec.region}.amazonaws.com/endpoints/{spec.prefix}-{name}/invocations"
    assert outputs["artifact_uri"].startswith("s3://") and outputs["artifact_uri"].endswith("/mlflow")
    package = build_wheel(project)
    assert outputs["pipeline_package_uri"].endswith(f"/packages/{package.sha256}/{package.filename}")
    assert outputs["pipeline_package_version"] == package.version
    if spec.aws_settings.registry_mode == "sagemaker":
        assert outputs["tracking_uri"].startswith(f"arn:aws:sagemaker:{spec.region}:")
    else:
        assert outputs["tracking_uri"].startswith("http://internal-")
    dashboard = f"https://{spec.region}.console.aws.amazon.com/cloudwatch/home?region={spec.region}#dashboards/"
    assert outputs["monitoring_dashboard_url"].startswith(dashboard)
    assert all(m["dashboard_url"].startswith(dashboard) for m in outputs["models"].values())


@pytest.mark.parametrize("stack", STACKS)
def test_no_untranslated_input_keys(captured, stack: str) -> None:
    problems = [f"{r.type} {r.name}: {path}" for r in captured(stack).resources
                for path in untranslated_keys(r.inputs)]
    assert problems == []


# ------------------------------------------------------------------------------------------------ policies


@pytest.mark.parametrize("stack", STACKS)
def test_policies_clean(captured, project, stack: str) -> None:
    """No violation at all in dev and prod; staging only hears the advisory that its state is unprotected."""
    spec = spec_of(project, stack)
    violations = evaluate(graph_of(captured(stack), spec))
    assert [v.to_json() for v in violations if v.mandatory] == []
    if spec.environment == "staging":
        assert {v.policy for v in violations} == {"state-protected"}
    else:
        assert violations == []


def test_prod_refuses_unencrypted_storage(captured, project) -> None:
    """A graph whose bucket lost its encryption and whose database is unencrypted fails prod's policies."""
    spec = spec_of(project, "aws-prod")
    resources = [r.to_json() for r in captured("aws-prod").resources
                 if not r.type.startswith("aws:s3/bucketServerSideEncryptionConfiguration")]
    for resource in resources:
        if resource["type"] == RDS:
            resource["inputs"] = {**resource["inputs"], "storageEncrypted": False}
    violations = evaluate(Graph(resources, {}, Context.from_spec(spec)))
    found = {(v.policy, v.message, v.mandatory) for v in violations if v.policy == "storage-encrypted"}
    assert found == {
        ("storage-encrypted",
         "S3 bucket without server-side encryption (add a BucketServerSideEncryptionConfiguration)", True),
        ("storage-encrypted", "RDS instance without storageEncrypted", True)}


def test_public_endpoint_refused_at_load(project) -> None:
    with pytest.raises(SpecError) as caught:
        load_stack("aws-public", project_dir=project)
    [problem] = caught.value.problems
    assert problem.path.endswith(".serving.public") and problem.file.endswith("Pulumi.aws-public.yaml")
    assert "is not supported on target 'aws'" in problem.message


# ------------------------------------------------------------------------------------------------ protection


def test_prod_state_is_protected_and_retained(captured) -> None:
    capture = captured("aws-prod")
    stateful = [*of_type(capture, BUCKET), *of_type(capture, RDS), *of_type(capture, KEY),
                one(capture, "aws:secretsmanager/secret:Secret"), one(capture, "aws:ecr/repository:Repository")]
    assert len(stateful) == 5
    assert all(r.protect and r.retain_on_delete for r in stateful), [r.name for r in stateful if not r.protect]
    database = one(capture, RDS).inputs
    assert database["deletionProtection"] is True and database["multiAz"] is True
    assert database["skipFinalSnapshot"] is False and database["finalSnapshotIdentifier"]
    assert database["backupRetentionPeriod"] == 30
    assert one(capture, BUCKET).inputs["forceDestroy"] is False


def test_dev_state_is_disposable(captured) -> None:
    capture = captured("aws-dev")
    assert not any(r.protect or r.retain_on_delete for r in capture.resources)
    database = one(capture, RDS).inputs
    assert database["deletionProtection"] is False and database["multiAz"] is False
    assert database["backupRetentionPeriod"] == 1


# ------------------------------------------------------------------------------------------------ IAM


@pytest.mark.parametrize("stack", STACKS)
def test_no_policy_allows_everything_on_everything(captured, stack: str) -> None:
    documents = list(policy_documents(captured(stack)))
    assert len(documents) > 10
    for resource, document in documents:
        for stmt in statements(document):
            if stmt.get("Effect") != "Allow":
                continue
            assert not ("*" in listify(stmt["Action"]) and "*" in listify(stmt.get("Resource"))), resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_roles_trust_one_service_of_this_account(captured, stack: str) -> None:
    for role in of_type(captured(stack), "aws:iam/role:Role"):
        (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Action"] == "sts:AssumeRole" and list(trust["Principal"]) == ["Service"]
        assert trust["Principal"]["Service"].endswith(".amazonaws.com")


def test_wildcard_resources_only_for_actions_aws_scopes_no_further(captured) -> None:
    allowed = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "ssmmessages:CreateControlChannel",
               "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"}
    namespaces = ({"StringEquals": {"cloudwatch:namespace": "Shipyard/shipyard-prod"}},
                  {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}})
    for resource, document in policy_documents(captured("aws-prod")):
        if resource.type != "aws:iam/rolePolicy:RolePolicy":
            continue
        for stmt in statements(document):
            if "*" in listify(stmt["Resource"]):
                actions = set(listify(stmt["Action"]))
                assert actions <= allowed or all(a.startswith("ec2:") for a in actions), (resource.name, actions)
                if "cloudwatch:PutMetricData" in actions:
                    assert stmt["Condition"] in namespaces


def test_serving_role_reads_the_registry_but_cannot_write_it(captured) -> None:
    capture = captured("aws-prod")
    document = json.loads(one(capture, "aws:iam/rolePolicy:RolePolicy", "shipyard-prod-churn-serving").inputs["policy"])
    writes = [r for s in statements(document) if "s3:PutObject" in s["Action"] for r in s["Resource"]]
    assert sorted(w.split("/", 1)[1] for w in writes) == ["inference/churn/*"]


# ------------------------------------------------------------------------------------------------ storage, network


@pytest.mark.parametrize("stack", STACKS)
def test_artifact_bucket_private_encrypted_versioned(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    block = one(capture, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[f] is True for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    (rule,) = one(capture, "aws:s3/bucketServerSideEncryptionConfiguration:"
                           "BucketServerSideEncryptionConfiguration").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].startswith("arn:aws:kms:")
    assert one(capture, "aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"] == \
        {"status": "Enabled"}
    (lifecycle,) = one(capture, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert lifecycle["noncurrentVersionExpiration"]["noncurrentDays"] == \
        spec.registry.artifacts.noncurrent_version_retention_days
    (deny,) = json.loads(one(capture, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    key = one(capture, KEY).inputs
    assert key["enableKeyRotation"] is True


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_database_encrypted_private_no_plaintext_password(captured, stack: str) -> None:
    capture = captured(stack)
    database = one(capture, RDS).inputs
    assert database["storageEncrypted"] is True and database["kmsKeyId"].startswith("arn:aws:kms:")
    assert database["publiclyAccessible"] is False
    assert database["password"] == "[secret]"
    assert one(capture, "aws:secretsmanager/secretVersion:SecretVersion").inputs["secretString"] == "[secret]"
    for definition in of_type(capture, "aws:ecs/taskDefinition:TaskDefinition"):
        for container in json.loads(definition.inputs["containerDefinitions"]):
            (secret,) = container["secrets"]
            assert secret["name"] == "MLFLOW_BACKEND_STORE_URI" and secret["valueFrom"].endswith(":url::")
            assert "postgresql" not in json.dumps(container["environment"])
            if container["name"] == "mlflow":
                assert "--no-serve-artifacts" in container["command"]


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_reachable_from_the_internet(captured, stack: str) -> None:
    capture = captured(stack)
    ingress = of_type(capture, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert not any(r.inputs.get("cidrIpv4") == "0.0.0.0/0" for r in ingress)
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in of_type(capture, "aws:ec2/subnet:Subnet"))
    assert not of_type(capture, "aws:ec2/internetGateway:InternetGateway")
    assert all(lb.inputs["internal"] is True for lb in of_type(capture, "aws:lb/loadBalancer:LoadBalancer"))
    services = of_type(capture, "aws:ecs/service:Service")
    assert all(s.inputs["networkConfiguration"]["assignPublicIp"] is False for s in services)


def test_own_vpc_reaches_aws_through_endpoints_only(captured) -> None:
    capture = captured("aws-prod")
    endpoints = {r.inputs["serviceName"] for r in of_type(capture, "aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert endpoints == {f"com.amazonaws.eu-west-1.{s}" for s in (
        "s3", "ecr.api", "ecr.dkr", "logs", "sts", "sagemaker.api", "sagemaker.runtime", "monitoring",
        "secretsmanager", "ssmmessages")}
    egress = of_type(capture, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert all(r.inputs.get("cidrIpv4") is None for r in egress)
    assert {int(r.inputs["fromPort"]) for r in egress} == {443, 80, 5000, 5432}
    subnets = of_type(capture, "aws:ec2/subnet:Subnet")
    assert len({s.inputs["availabilityZone"] for s in subnets}) == 3


def test_database_only_reachable_from_the_mlflow_task(captured) -> None:
    capture = captured("aws-prod")
    groups = {r.urn: r.name for r in of_type(capture, "aws:ec2/securityGroup:SecurityGroup")}
    into_db = [r for r in of_type(capture, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
               if int(r.inputs["fromPort"]) == 5432]
    assert len(into_db) == 1
    assert {groups[u] for u in into_db[0].dependencies if u in groups} == {"shipyard-prod-database",
                                                                          "shipyard-prod-mlflow-task"}


def test_existing_network_and_managed_mlflow(captured) -> None:
    capture = captured("aws-edge")
    assert not of_type(capture, "aws:ec2/vpc:Vpc") and not of_type(capture, "aws:ec2/vpcEndpoint:VpcEndpoint")
    assert not of_type(capture, RDS) and not of_type(capture, "aws:ecs/service:Service")
    groups = of_type(capture, "aws:ec2/securityGroup:SecurityGroup")
    assert [g.inputs["vpcId"] for g in groups] == ["vpc-0abc1234"]
    server = one(capture, "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer").inputs
    assert server["artifactStoreUri"].endswith("/mlflow") and server["trackingServerSize"] == "Small"
    jobs_policy = json.loads(one(capture, "aws:iam/rolePolicy:RolePolicy", "shipyard-staging-training-jobs")
                             .inputs["policy"])
    assert any(s["Action"] == ["sagemaker-mlflow:*"] for s in statements(jobs_policy))
    assert any("arn:aws:s3:::datasets-bucket/churn/train.parquet*" in s["Resource"] for s in statements(jobs_policy))


def test_webhooks_are_secret_subscriptions(captured) -> None:
    subscriptions = of_type(captured("aws-edge"), "aws:sns/topicSubscription:TopicSubscription")
    assert [(s.inputs["protocol"], s.inputs["endpoint"]) for s in subscriptions] == [("https", "[secret]")] * 2


def test_external_database_by_reference(captured) -> None:
    capture = captured("aws-extdb")
    assert not of_type(capture, RDS) and not of_type(capture, "random:index/randomPassword:RandomPassword")
    containers = json.loads(one(capture, "aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])
    assert [c["secrets"][0]["valueFrom"] for c in containers] == \
        ["arn:aws:secretsmanager:eu-central-1:123456789012:secret:mlflow-db-Xy12Ab"] * 2


# ------------------------------------------------------------------------------------------------ training


def _definition(capture: Capture, name: str) -> dict[str, Any]:
    return json.loads(one(capture, PIPELINE, name).inputs["pipelineDefinition"])


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_training_pipeline_runs_the_wheel(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    package = build_wheel(project)
    wheel = one(capture, "aws:s3/bucketObjectv2:BucketObjectv2", f"{spec.prefix}-wheel").inputs
    assert wheel["key"] == f"packages/{package.sha256}/{package.filename}"
    assert wheel["source"]["path"] == str(package.path)
    assert wheel["metadata"]["sha256"] == package.sha256 and wheel["serverSideEncryption"] == "aws:kms"
    for model in spec.models:
        definition = _definition(capture, f"{spec.prefix}-training-{model.name}")
        assert [s["Name"] for s in definition["Steps"]] == ["ValidateData", "Train", "Evaluate", "Register"]
        train = definition["Steps"][1]["Arguments"]
        assert train["EnableManagedSpotTraining"] is spec.training.spot
        assert train["StoppingCondition"]["MaxRuntimeInSeconds"] == spec.training.time_limit_minutes * 60
        assert train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].endswith(
            f"/packages/{package.sha256}/")
        evaluate = definition["Steps"][2]["Arguments"]
        assert evaluate["ProcessingInputs"][2]["S3Input"]["S3Uri"] == {
            "Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
        assert "--run-id" in evaluate["AppSpecification"]["ContainerEntrypoint"][2]
        assert evaluate["NetworkConfig"]["VpcConfig"]["Subnets"]


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod", "aws-edge"])
def test_run_configs_are_valid_and_content_addressed(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    for model in spec.models:
        obj = one(capture, "aws:s3/bucketObjectv2:BucketObjectv2", f"{spec.prefix}-config-{model.name}").inputs
        config = from_dict(json.loads(obj["content"]))
        assert config.model_name == model.registered_model
        assert config.sinks == [f"cloudwatch:Shipyard/{spec.prefix}"] and config.retrain == "none"
        assert config.inference_log_uri.endswith(f"/inference/{model.name}")
        assert obj["key"].startswith(f"configs/{model.name}/") and obj["key"].endswith("/run.json")
        config_prefix = obj["key"].rsplit("/", 1)[0]
        definition = _definition(capture, f"{spec.prefix}-training-{model.name}")
        inputs = definition["Steps"][0]["Arguments"]["ProcessingInputs"]
        assert inputs[1]["S3Input"]["S3Uri"].endswith(f"/{config_prefix}/")


def test_schedules_start_the_pipelines(captured) -> None:
    capture = captured("aws-edge")
    schedules = {s.name: s.inputs for s in of_type(capture, "aws:scheduler/schedule:Schedule")}
    train = schedules["shipyard-staging-training-churn"]
    assert train["scheduleExpression"] == "cron(30 2 ? * MON-FRI *)"
    assert train["target"]["sagemakerPipelineParameters"]["pipelineParameters"] == [
        {"name": jobs.REASON, "value": "schedule"}]
    assert train["target"]["arn"].endswith(":pipeline/shipyard-staging-training-churn")
    assert schedules["shipyard-staging-churn-monitor"]["scheduleExpression"] == "cron(0/15 * * * ? *)"  # shared spec
    definition = _definition(capture, "shipyard-staging-training-churn")
    assert definition["Steps"][1]["Arguments"]["ResourceConfig"]["InstanceType"] == "ml.g5.12xlarge"
    assert "VolumeKmsKeyId" not in definition["Steps"][1]["Arguments"]["ResourceConfig"]
    assert "VolumeKmsKeyId" in definition["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"]


# ------------------------------------------------------------------------------------------------ serving


def test_endpoints_roll_out_safely_and_scale_within_bounds(captured, project) -> None:
    capture, spec = captured("aws-prod"), spec_of(project, "aws-prod")
    alarms = {a.inputs["name"] for a in of_type(capture, "aws:cloudwatch/metricAlarm:MetricAlarm")}
    for model in spec.models:
        endpoint = one(capture, "aws:sagemaker/endpoint:Endpoint", f"{spec.prefix}-{model.name}").inputs
        policy = endpoint["deploymentConfig"]["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
        # 10% of a new fleet of min_replicas (2) is one whole instance: at most half the fleet, as SageMaker wants
        assert policy["type"] == "CANARY" and policy["canarySize"] == {"type": "INSTANCE_COUNT", "value": 1}
        rollback = [a["alarmName"] for a in endpoint["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]]
        assert len(rollback) == 2 and set(rollback) <= alarms
        target = one(capture, "aws:appautoscaling/target:Target", f"{spec.prefix}-{model.name}").inputs
        bounds = (model.serving.min_replicas, model.serving.max_replicas)
        assert (target["minCapacity"], target["maxCapacity"]) == bounds
        assert target["resourceId"] == f"endpoint/{spec.prefix}-{model.name}/variant/primary"
        config = one(capture, "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                     f"{spec.prefix}-{model.name}").inputs
        assert "dataCaptureConfig" not in config  # the monitor reads the server's inference logs only
        assert config["kmsKeyArn"].startswith("arn:aws:kms:")
        container = one(capture, "aws:sagemaker/model:Model", f"{spec.prefix}-{model.name}").inputs["primaryContainer"]
        assert "@sha256:" in container["image"] and ".dkr.ecr.eu-west-1.amazonaws.com/" in container["image"]
        assert container["environment"]["SHIPYARD_RUN_CONFIG"].endswith("/run.json")


def test_gpu_endpoint_and_replica_floor(captured) -> None:
    capture = captured("aws-edge")
    gpu = one(capture, "aws:sagemaker/endpointConfiguration:EndpointConfiguration", "shipyard-staging-churn").inputs
    assert gpu["productionVariants"][0]["instanceType"] == "ml.g5.xlarge" and "kmsKeyArn" not in gpu
    scaling = one(capture, "aws:appautoscaling/target:Target", "shipyard-staging-price").inputs
    assert (scaling["minCapacity"], scaling["maxCapacity"]) == (1, 2)


# ------------------------------------------------------------------------------------------------ monitoring


def test_drift_alarm_drives_retraining(captured, project) -> None:
    capture, spec = captured("aws-prod"), spec_of(project, "aws-prod")
    rules = {r.name: r for r in of_type(capture, "aws:cloudwatch/eventRule:EventRule")}
    for model in spec.models:
        alarm = one(capture, "aws:cloudwatch/metricAlarm:MetricAlarm", f"{spec.prefix}-{model.name}-drift").inputs
        assert alarm["metricName"] == DRIFT_ALARM["MetricName"]
        assert alarm["dimensions"] == {"Model": model.registered_model}
        assert alarm["treatMissingData"] == "ignore" and alarm["alarmActions"] == alarm["okActions"]
        rule = rules.get(f"{spec.prefix}-{model.name}-retrain")
        assert (rule is not None) is model.monitoring.retrain_on_drift
        if rule:
            pattern = json.loads(rule.inputs["eventPattern"])
            # Only the verdict alarm retrains: the data-quality alarm (and the quality bounds) only notify.
            assert pattern["resources"] == [f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{alarm['name']}"]
            assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
            target = one(capture, "aws:cloudwatch/eventTarget:EventTarget", f"{spec.prefix}-{model.name}-retrain")
            assert target.inputs["arn"].endswith(f":pipeline/{spec.prefix}-training-{model.name}")
        data_quality = one(capture, "aws:cloudwatch/metricAlarm:MetricAlarm",
                           f"{spec.prefix}-{model.name}-data-quality").inputs
        assert data_quality["metricName"] == "shipyard_data_quality_problems"
        assert (data_quality["comparisonOperator"], data_quality["threshold"]) == ("GreaterThanThreshold", 0.0)
        assert data_quality["dimensions"] == {"Model": model.registered_model}
    quality = one(capture, "aws:cloudwatch/metricAlarm:MetricAlarm", "shipyard-prod-churn-quality-roc_auc").inputs
    assert (quality["comparisonOperator"], quality["threshold"]) == ("LessThanThreshold", 0.75)


def test_alerts_go_to_an_encrypted_topic(captured) -> None:
    capture = captured("aws-prod")
    topics = of_type(capture, "aws:sns/topic:Topic")
    assert len(topics) == 2 and all(t.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:") for t in topics)
    emails = [(s.inputs["protocol"], s.inputs["endpoint"])
              for s in of_type(capture, "aws:sns/topicSubscription:TopicSubscription")]
    assert emails == [("email", "ml-oncall@example.com")] * 2


def test_dashboards_are_valid(captured) -> None:
    for board in of_type(captured("aws-prod"), "aws:cloudwatch/dashboard:Dashboard"):
        widgets = json.loads(board.inputs["dashboardBody"])["widgets"]
        assert widgets and all(w["properties"]["metrics"] for w in widgets)


# ------------------------------------------------------------------------------------------------ names

#: Where each named resource type keeps its physical name, and AWS's length limit of it.
NAME_LIMITS = {
    "aws:iam/role:Role": ("name", 64),
    "aws:iam/rolePolicy:RolePolicy": ("name", 128),
    "aws:iam/policy:Policy": ("name", 128),
    "aws:s3/bucket:Bucket": ("bucket", 63),
    "aws:sagemaker/model:Model": ("name", 63),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": ("name", 63),
    "aws:sagemaker/endpoint:Endpoint": ("name", 63),
    "aws:sagemaker/pipeline:Pipeline": ("pipelineName", 256),
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": ("trackingServerName", 256),
    "aws:scheduler/schedule:Schedule": ("name", 64),
    "aws:cloudwatch/eventRule:EventRule": ("name", 64),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", 255),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName", 255),
    "aws:cloudwatch/logGroup:LogGroup": ("name", 512),
    "aws:lb/loadBalancer:LoadBalancer": ("name", 32),
    "aws:lb/targetGroup:TargetGroup": ("name", 32),
    "aws:rds/instance:Instance": ("identifier", 63),
    "aws:rds/subnetGroup:SubnetGroup": ("name", 255),
    "aws:ecs/cluster:Cluster": ("name", 255),
    "aws:ecs/service:Service": ("name", 255),
    "aws:ecs/taskDefinition:TaskDefinition": ("family", 255),
    "aws:ecr/repository:Repository": ("name", 256),
    "aws:ec2/securityGroup:SecurityGroup": ("name", 255),
    "aws:sns/topic:Topic": ("name", 256),
    "aws:secretsmanager/secret:Secret": ("name", 512),
    "aws:kms/alias:Alias": ("name", 256),
    "aws:appautoscaling/policy:Policy": ("name", 255),
}
#: Types whose AWS identity carries no name derived from the spec (IDs, ARNs, or a parent's name).
UNNAMED = {
    "aws:appautoscaling/target:Target", "aws:cloudwatch/eventTarget:EventTarget", "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/subnet:Subnet", "aws:ec2/vpc:Vpc",
    "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:ecr/lifecyclePolicy:LifecyclePolicy", "aws:kms/key:Key",
    "aws:lb/listener:Listener", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketObjectv2:BucketObjectv2", "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPolicy:BucketPolicy", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning", "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:sns/topicSubscription:TopicSubscription", "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
}


@pytest.mark.parametrize("stack", ["aws-long", "aws-edge"])
def test_names_fit_aws_limits(captured, project, stack: str) -> None:
    """Explicit names within the limit; auto-named resources leave room for Pulumi's 8-character suffix."""
    from infra.targets.aws.names import AUTONAME_SUFFIX

    capture = captured(stack)
    spec = spec_of(project, stack)
    if stack == "aws-long":
        assert len(spec.name) == 40 and len(spec.models[0].name) == 40
    checked = 0
    for resource in capture.resources:
        if not resource.type.startswith("aws:") or resource.type in UNNAMED:
            continue
        assert resource.type in NAME_LIMITS, f"{resource.type}: add it to NAME_LIMITS or UNNAMED"
        key, limit = NAME_LIMITS[resource.type]
        given = resource.inputs.get(key)
        length = len(given) if given else len(resource.name) + AUTONAME_SUFFIX
        assert length <= limit, f"{resource.type} {resource.name}: {key} of {length} characters > {limit}"
        checked += 1
    assert checked >= 20
    bucket = one(capture, BUCKET)
    assert bucket.name == bucket.name.lower()


# ------------------------------------------------------------------------------------------------ deployability

SERVICE = "aws:ecs/service:Service"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"


def _containers(capture: Capture, family: str) -> list[dict[str, Any]]:
    definition = next(d for d in of_type(capture, TASK_DEFINITION) if d.inputs["family"] == family)
    return json.loads(definition.inputs["containerDefinitions"])


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod", "aws-extdb"])
def test_mlflow_waits_for_its_database_and_secret_and_for_steady_state(captured, project, stack: str) -> None:
    """No task starts before the database and the secret's value exist; `pulumi up` waits for healthy tasks."""
    capture, spec = captured(stack), spec_of(project, stack)
    services = of_type(capture, SERVICE)
    assert services
    versions = {r.urn for r in of_type(capture, "aws:secretsmanager/secretVersion:SecretVersion")}
    instances = {r.urn for r in of_type(capture, RDS)}
    listener = one(capture, "aws:lb/listener:Listener").urn
    for service in services:
        assert service.inputs["waitForSteadyState"] is True, service.name
        assert service.inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        assert {listener, *instances, *versions} <= set(service.dependencies), service.name
    if spec.registry.database.external_url is None:
        assert len(instances) == 1 and len(versions) == 1
    else:  # an existing secret by ARN: nothing of this stack to wait for but the listener
        assert not instances and not versions


@pytest.mark.parametrize(("stack", "replicas"), [("aws-dev", 0), ("aws-prod", 1)])
def test_the_schema_is_migrated_once_before_more_tasks_start(captured, project, stack: str, replicas: int) -> None:
    """The leader service runs one task whose `migrate` container upgrades the schema before its server starts;
    replicas run in a second service created only once the leader is steady, and never migrate."""
    capture, spec = captured(stack), spec_of(project, stack)
    services = {s.name: s for s in of_type(capture, SERVICE)}
    leader = services.pop(f"{spec.prefix}-mlflow")
    assert leader.inputs["desiredCount"] == 1 and leader.inputs["waitForSteadyState"] is True
    upgrade, server = _containers(capture, f"{spec.prefix}-mlflow")
    assert upgrade["name"] == "migrate" and "mlflow db upgrade" in upgrade["command"][0]
    assert server["dependsOn"] == [{"containerName": "migrate", "condition": "SUCCESS"}]
    assert leader.inputs["taskDefinition"].endswith(f"task-definition/{spec.prefix}-mlflow:1")
    assert len(services) == (1 if replicas else 0)
    for follower in services.values():
        assert follower.inputs["desiredCount"] == replicas
        assert leader.urn in follower.dependencies
        assert follower.inputs["taskDefinition"].endswith(f"task-definition/{spec.prefix}-mlflow-replica:1")
        assert [c["name"] for c in _containers(capture, f"{spec.prefix}-mlflow-replica")] == ["mlflow"]


def _environments(capture: Capture) -> dict[str, dict[str, str]]:
    """Every container and job environment the program declares, by where it is."""
    found: dict[str, dict[str, str]] = {}
    for pipeline in of_type(capture, PIPELINE):
        for step in json.loads(pipeline.inputs["pipelineDefinition"])["Steps"]:
            found[f"{pipeline.name}/{step['Name']}"] = step["Arguments"]["Environment"]
    for model in of_type(capture, "aws:sagemaker/model:Model"):
        found[model.name] = model.inputs["primaryContainer"]["environment"]
    for definition in of_type(capture, TASK_DEFINITION):
        for container in json.loads(definition.inputs["containerDefinitions"]):
            found[f"{definition.name}/{container['name']}"] = {e["name"]: e["value"] for e in container["environment"]}
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_and_job_knows_its_region(captured, project, stack: str) -> None:
    """boto3 raises NoRegionError without AWS_DEFAULT_REGION: the drift metric would never reach CloudWatch."""
    capture, spec = captured(stack), spec_of(project, stack)
    environments = _environments(capture)
    steps = [k for k in environments if "/" in k and not k.startswith(f"{spec.prefix}-mlflow")]
    assert len(steps) == 5 * len(spec.models)  # four training steps and the monitor, per model
    assert len(environments) >= len(steps) + len(spec.models)
    missing = {where: env for where, env in environments.items()
               if (env.get("AWS_DEFAULT_REGION"), env.get("AWS_REGION")) != (spec.region, spec.region)}
    assert missing == {}


def test_serving_role_publishes_the_instance_metrics_autoscaling_tracks(captured, project) -> None:
    capture, spec = captured("aws-prod"), spec_of(project, "aws-prod")
    for model in spec.models:
        document = json.loads(one(capture, "aws:iam/rolePolicy:RolePolicy",
                                  f"{spec.prefix}-{model.name}-serving").inputs["policy"])
        [metrics] = [s for s in statements(document) if "cloudwatch:PutMetricData" in listify(s["Action"])]
        assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}
        policy = one(capture, "aws:appautoscaling/policy:Policy", f"{spec.prefix}-{model.name}-cpu").inputs
        tracked = policy["targetTrackingScalingPolicyConfiguration"]["customizedMetricSpecification"]
        assert tracked["namespace"] == "/aws/sagemaker/Endpoints" and tracked["metricName"] == "CPUUtilization"


def test_tracking_server_is_reached_by_ssm_port_forwarding(captured) -> None:
    """CD and people forward a local port into an MLflow task with SSM (IAM-authenticated, logged in CloudTrail):
    ECS Exec on, the agent's channels allowed, the ssmmessages endpoint in the VPC, and a policy to attach that
    allows the port-forwarding document on this cluster's tasks only (no shell)."""
    capture = captured("aws-prod")
    assert all(s.inputs["enableExecuteCommand"] is True for s in of_type(capture, SERVICE))
    task_role = one(capture, "aws:iam/rolePolicy:RolePolicy", "shipyard-prod-mlflow-task")
    task_policy = json.loads(task_role.inputs["policy"])
    assert any("ssmmessages:OpenDataChannel" in listify(s["Action"]) for s in statements(task_policy))
    assert any(e.inputs["serviceName"] == "com.amazonaws.eu-west-1.ssmmessages"
               for e in of_type(capture, "aws:ec2/vpcEndpoint:VpcEndpoint"))
    access = one(capture, "aws:iam/policy:Policy")
    grants = {a: listify(s["Resource"]) for s in statements(json.loads(access.inputs["policy"]))
              for a in listify(s["Action"])}
    assert sorted(grants["ssm:StartSession"]) == [
        "arn:aws:ecs:eu-west-1:123456789012:task/shipyard-prod-mlflow/*",
        "arn:aws:ssm:eu-west-1::document/AWS-StartPortForwardingSession"]
    assert "ecs:ExecuteCommand" not in grants
    forwarded = _containers(capture, "shipyard-prod-mlflow")[1]
    hosts = {e["name"]: e["value"] for e in forwarded["environment"]}["MLFLOW_SERVER_ALLOWED_HOSTS"]
    assert "localhost:*" in hosts.split(",")
