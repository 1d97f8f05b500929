"""The EKS cluster profile (`aws.compute: kubernetes`): its rules, the cluster, the node groups, the identities, and
the Kubernetes target's workloads - object for object the same as the Kubernetes target builds for the same spec,
except the fields the profile is documented to change (docs/aws.md, "The EKS cluster profile")."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
from k8s_helpers import kube_objects, manifest, pod_specs, run_capture, twin_stack
from test_cluster_profile import CHANGED, ONLY_ON_KUBERNETES, _drop, _objects, _without_placement, make_spec, of_type

from infra.plan_capture import Capture
from infra.policies import Context, Graph, evaluate
from infra.stackfile import load_stack
from infra.targets import cluster, load_target
from infra.targets.aws import eks as eks_program
from infra.targets.aws import eks_facts, network
from infra.targets.aws.names import LIMITS

STACK = "aws-eks-prod"
TWIN = "k8s-eks-twin"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EKS = "aws:eks/cluster:Cluster"
LONG_NAME, LONG_MODEL = "p" * 20 + "-" + "q" * 19, "m" * 40

#: A dev EKS stack with the longest names a spec allows and GPU training on spot capacity.
LONG_STACK = f"""\
config:
  shipyard:target: aws
  shipyard:name: {LONG_NAME}
  shipyard:environment: dev
  shipyard:region: us-east-1
  shipyard:aws: {{compute: kubernetes}}
  shipyard:networking: {{private: false, allowed_cidrs: [203.0.113.0/24]}}
  shipyard:training: {{size: gpu, gpu_count: 4, spot: true, max_nodes: 3}}
  shipyard:models:
    - {{name: churn, remove: true}}
    - name: {LONG_MODEL}
"""




@pytest.fixture(scope="module")
def eks(project_copy: Callable) -> Callable[[str], Capture]:
    """Captures of the EKS stacks and the Kubernetes twin, once per module."""
    project = project_copy({"aws-eks-long": LONG_STACK})
    cache: dict[str, Capture] = {}

    def get(stack: str) -> Capture:
        if stack == TWIN and stack not in cache:
            (image,) = {c["image"] for owner, _, pod in pod_specs(get(STACK)) if owner == "Deployment/mlflow"
                        for c in pod["containers"]}  # the runtime image (the autoscaler runs its own)
            (project / "stacks" / f"Pulumi.{TWIN}.yaml").write_text(twin_stack(project, STACK, image.partition("@")[0]))
        if stack not in cache:
            cache[stack] = run_capture(project, stack)
        return cache[stack]

    get.project = project  # type: ignore[attr-defined]
    return get


def _policy(resource: Any) -> dict[str, Any]:
    return json.loads(resource.inputs["policy"])


# --- rules -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_a_default_eks_spec_is_built_as_written(environment: str) -> None:
    spec = make_spec("aws", environment=environment)
    assert load_target("aws").check(spec) == []
    if environment == "dev":
        assert load_target("aws").ignored(spec) == []


@pytest.mark.parametrize(("overrides", "path", "words"), [
    ({"models": [{"name": "churn", "serving": {"public": True, "auth": "api_key"}}]},
     "models[0].serving.public", "not available on the EKS cluster profile"),
    ({"models": [{"name": "churn", "serving": {"auth": "iam"}}]}, "models[0].serving.auth", "'iam'"),
    ({"region": "eu-west-1a"}, "region", "availability zone"),
    ({"networking": {"existing_network": "vpc-nope"}}, "networking.existing_network", "not a VPC id"),
])
def test_check_refuses_what_eks_or_the_workloads_cannot_do(overrides: dict, path: str, words: str) -> None:
    problems = [p for p in load_target("aws").check(make_spec("aws", **overrides)) if p.path == path]
    assert problems and words in problems[0].message, load_target("aws").check(make_spec("aws", **overrides))


def test_managed_only_rules_do_not_apply_on_the_cluster() -> None:
    """A Kubernetes Secret reference for the database and a canary on one replica are fine on EKS; the managed
    profile refuses the reference (it wants a Secrets Manager ARN)."""
    overrides = {"registry": {"database": {"external_url": {"ref": "pg/uri"}}}}
    assert load_target("aws").check(make_spec("aws", **overrides)) == []
    managed = make_spec("aws", **overrides, aws={})
    assert {p.path for p in load_target("aws").check(managed)} == {"registry.database.external_url.ref"}


def test_ignored_drops_what_the_cloud_side_honours_and_names_the_rest() -> None:
    spec = make_spec("aws", environment="prod", training={"min_nodes": 1, "max_nodes": 5, "spot": True},
                     tags={"team": "ml"}, networking={"allowed_cidrs": ["10.8.0.0/16"]},
                     aws={"compute": "kubernetes", "registry_mode": "sagemaker"},
                     registry={"artifacts": {"s3_endpoint": "https://s3.example.com", "bucket": "b"}})
    paths = {n.path for n in load_target("aws").ignored(spec)}
    assert paths == {"registry.artifacts.s3_endpoint", "registry.artifacts.bucket", "aws.registry_mode",
                     "models[0].serving.rollout.strategy"}, paths
    managed = {n.path for n in load_target("aws").ignored(make_spec(
        "aws", environment="prod", aws={}, training={"min_nodes": 1}))}
    assert "training.min_nodes" in managed, "the reverse: what only the cluster honours"


def test_names_too_long_for_eks_are_refused_at_the_key() -> None:
    from infra.targets.aws.rules import generated_names
    spec = make_spec("aws", name="p" * 20 + "-" + "q" * 19)
    kinds = {kind for _, kind, _ in generated_names(spec)}
    assert {"eks_cluster", "node_group"} <= kinds and "sagemaker" not in kinds
    assert all(len(name) <= LIMITS[kind] for _, kind, name in generated_names(spec))


# --- node groups (pure) ------------------------------------------------------------------------------------


def test_node_groups_follow_the_aws_size_table_and_the_training_bounds() -> None:
    groups = {g.name: g for g in eks_facts.node_group_plans(make_spec(
        "aws", environment="prod", training={"size": "large", "min_nodes": 1, "max_nodes": 4, "spot": True}))}
    assert set(groups) == {"system", "training", "training-spot"}
    assert (groups["system"].min_nodes, groups["system"].max_nodes) == cluster.SYSTEM_NODES["prod"]
    assert groups["system"].taints == () and groups["system"].labels == {cluster.POOL_LABEL: "system"}
    training, spot = groups["training"], groups["training-spot"]
    assert (training.machine, training.min_nodes, training.max_nodes, eks_facts.capacity_type(training)) == (
        "m5.4xlarge", 1, 4, "ON_DEMAND"), "sizes.py's large training instance without 'ml.'"
    assert (spot.min_nodes, spot.max_nodes, eks_facts.capacity_type(spot)) == (0, 4, "SPOT"), "spot scales from zero"
    assert training.taints == spot.taints == (cluster.TRAINING_TAINT,)
    assert training.labels == spot.labels == {cluster.POOL_LABEL: "training"}


def test_gpu_training_gets_a_tainted_gpu_group_and_no_spot_group_without_spot() -> None:
    groups = eks_facts.node_group_plans(make_spec("aws", environment="prod",
                                                  training={"size": "gpu", "gpu_count": 4, "spot": False}))
    assert [g.name for g in groups] == ["system", "training"]
    gpu = groups[1]
    assert (gpu.machine, eks_facts.ami(gpu), gpu.min_nodes) == ("g5.12xlarge", eks_facts.GPU_AMI, 0)
    assert cluster.GPU_TAINT in gpu.taints and eks_facts.ami(groups[0]) == eks_facts.CPU_AMI


def test_the_cluster_profile_reaches_its_aws_apis_without_sagemakers() -> None:
    endpoints = network.interface_endpoints("self-hosted", cluster=True)
    assert {"ec2", "eks-auth", "ecr-api", "ecr-dkr", "sts", "autoscaling"} <= set(endpoints), "the autoscaler's"
    assert not {"sagemaker-api", "sagemaker-runtime", "secretsmanager"} & set(endpoints)


# --- the EKS program ---------------------------------------------------------------------------------------


def test_the_cluster_is_private_encrypted_and_logged(eks) -> None:
    capture = eks(STACK)
    (found,) = of_type(capture, EKS)
    body = found.inputs
    assert body["vpcConfig"]["endpointPrivateAccess"] is True
    assert body["vpcConfig"]["endpointPublicAccess"] is False, "prod's API has no public endpoint"
    assert body["encryptionConfig"]["resources"] == ["secrets"] and body["encryptionConfig"]["provider"]["keyArn"]
    assert body["version"] == "1.33" and body["accessConfig"]["authenticationMode"] == "API"
    assert set(body["enabledClusterLogTypes"]) >= {"api", "audit"}
    (logs,) = [r for r in of_type(capture, "aws:cloudwatch/logGroup:LogGroup") if "/aws/eks/" in r.inputs["name"]]
    assert logs.inputs["name"] == f"/aws/eks/{body['name']}/cluster" and logs.inputs["kmsKeyId"]
    assert found.protect and body["deletionProtection"] is True, "prod protects the cluster"
    api = [r.inputs for r in of_type(capture, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
           if r.inputs.get("cidrIpv4") == "10.8.0.0/16"]
    assert [(rule["fromPort"], rule["toPort"]) for rule in api] == [(443, 443)], "allowed_cidrs reach the API"


def test_a_public_endpoint_only_when_the_spec_turns_private_off(eks) -> None:
    (found,) = of_type(eks("aws-eks-long"), EKS)
    assert found.inputs["vpcConfig"]["endpointPublicAccess"] is True
    assert found.inputs["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_node_groups_carry_their_bounds_taints_and_labels(eks) -> None:
    spec = load_stack(STACK, project_dir=eks.project).spec
    plans = {p.name: p for p in eks_facts.node_group_plans(spec)}
    groups = {r.inputs["nodeGroupName"]: r for r in of_type(eks(STACK), NODE_GROUP)}
    assert set(groups) == set(plans) == {"system", "training", "training-spot"}
    for name, group in groups.items():
        plan, body = plans[name], group.inputs
        scaling = body["scalingConfig"]
        assert (scaling["minSize"], scaling["maxSize"], scaling["desiredSize"]) == (
            plan.min_nodes, plan.max_nodes, plan.min_nodes)
        assert body["instanceTypes"] == [plan.machine] and body["capacityType"] == eks_facts.capacity_type(plan)
        assert body["labels"] == plan.labels
        assert [(t["key"], t["value"], t["effect"]) for t in body.get("taints", [])] == [
            (key, value, "NO_SCHEDULE") for key, value in plan.taints]
    assert groups["training"].inputs["scalingConfig"]["minSize"] == 0, "training scales from zero"
    assert groups["training-spot"].inputs["capacityType"] == "SPOT"


def test_gpu_groups_run_the_nvidia_ami_with_the_gpu_taint(eks) -> None:
    groups = {r.inputs["nodeGroupName"]: r.inputs for r in of_type(eks("aws-eks-long"), NODE_GROUP)}
    for name in ("training", "training-spot"):
        assert groups[name]["amiType"] == eks_facts.GPU_AMI and groups[name]["instanceTypes"] == ["g5.12xlarge"]
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"} in groups[name]["taints"]
    assert groups["system"]["amiType"] == eks_facts.CPU_AMI


def test_pods_cannot_reach_the_nodes_credentials(eks) -> None:
    capture = eks(STACK)
    templates = of_type(capture, "aws:ec2/launchTemplate:LaunchTemplate")
    assert templates and all(t.inputs["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                                             "httpPutResponseHopLimit": 1} for t in templates)
    assert all(t.inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true" for t in templates)
    node_roles = {r.urn for r in of_type(capture, "aws:iam/role:Role") if "ec2.amazonaws.com" in r.inputs[
        "assumeRolePolicy"]}
    attached = sorted(a.inputs["policyArn"].rsplit("/", 1)[1]
                      for a in of_type(capture, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                      if "eks-nodes" in a.name)
    assert len(node_roles) == 1 and attached == sorted(eks_facts.NODE_POLICIES), "only what EKS requires"
    assert not [p for p in of_type(capture, "aws:iam/rolePolicy:RolePolicy") if "eks-nodes" in p.name]


def test_only_the_tracking_server_gets_an_aws_identity_with_only_its_prefix(eks) -> None:
    capture = eks(STACK)
    associations = of_type(capture, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert sorted((a.inputs["namespace"], a.inputs["serviceAccount"]) for a in associations) == [
        eks_facts.AUTOSCALER_ACCOUNT, ("shipyard-prod", "mlflow")], "the workloads': only the tracking server"
    (policy,) = [r for r in of_type(capture, "aws:iam/rolePolicy:RolePolicy") if r.name == "shipyard-prod-mlflow"]
    statements = _policy(policy)["Statement"]
    resources = [res for s in statements for res in ([s["Resource"]] if isinstance(s["Resource"], str)
                                                     else s["Resource"])]
    objects = [r for r in resources if r.startswith("arn:aws:s3:::") and r.endswith("/*")]
    assert objects and all(r.endswith("/mlflow/*") for r in objects), objects
    actions = {a for s in statements for a in s["Action"]}
    assert not {a for a in actions if a.startswith("cloudwatch:") or a == "s3:*" or a == "*"}
    pod_roles = sorted(r.name.split("-")[-1] for r in of_type(capture, "aws:iam/role:Role")
                       if json.loads(r.inputs["assumeRolePolicy"])["Statement"][0]["Principal"]
                       == {"Service": "pods.eks.amazonaws.com"})
    assert pod_roles == ["autoscaler", "csi", "mlflow"], "the tracking server's, the EBS CSI driver's, the autoscaler's"
    (csi,) = [a for a in of_type(capture, "aws:eks/addon:Addon") if a.inputs["addonName"] == "aws-ebs-csi-driver"]
    assert csi.inputs["podIdentityAssociations"][0]["serviceAccount"] == eks_facts.EBS_CSI_ACCOUNT[1]
    accounts = [manifest(r)["metadata"] for r in kube_objects(capture) if manifest(r)["kind"] == "ServiceAccount"]
    assert not any(m.get("annotations") for m in accounts), "Pod Identity needs no annotation"


def test_the_network_policy_enforcer_and_the_addons_are_eks_managed(eks) -> None:
    addons = {a.inputs["addonName"]: a.inputs for a in of_type(eks(STACK), "aws:eks/addon:Addon")}
    assert set(addons) == {*eks_facts.NETWORK_ADDONS, *eks_facts.NODE_ADDONS}
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_every_kubernetes_object_is_on_the_clusters_provider(eks) -> None:
    capture = eks(STACK)
    (provider,) = of_type(capture, "pulumi:providers:kubernetes")
    config = json.loads(provider.inputs["kubeconfig"])
    user = config["users"][0]["user"]["exec"]
    assert (user["command"], user["args"][:2]) == ("aws", ["eks", "get-token"]), "no credential inside"
    assert config["clusters"][0]["cluster"]["server"].endswith(".eu-west-1.eks.amazonaws.com")
    objects = kube_objects(capture, include_custom=True)
    assert objects and all(r.provider.startswith(provider.urn) for r in objects)
    assert set(provider.dependencies) >= {r.urn for r in of_type(capture, NODE_GROUP)}, "objects wait for nodes"


def test_the_database_artifacts_and_image_are_the_clouds(eks) -> None:
    capture = eks(STACK)
    (db,) = of_type(capture, "aws:rds/instance:Instance")
    assert db.inputs["publiclyAccessible"] is False and db.inputs["storageEncrypted"] is True
    from_cluster = [r.inputs for r in of_type(capture, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                    if r.inputs.get("fromPort") == 5432]
    assert [r["referencedSecurityGroupId"].endswith("0eks") for r in from_cluster] == [True], "the cluster's SG"
    assert capture.outputs["artifact_uri"].startswith("s3://") and capture.outputs["artifact_uri"].endswith("/mlflow")
    assert capture.outputs["image_repository"].endswith(".amazonaws.com/shipyard-prod-runtime")
    kinds = {m["kind"] for m in map(manifest, kube_objects(capture))}
    assert "StatefulSet" not in kinds, "no in-cluster PostgreSQL"
    assert not of_type(capture, "aws:cloudwatch/dashboard:Dashboard"), "no SageMaker dashboard on the cluster"


#: The objects the EKS profile adds: the gp3 StorageClass the workloads' volumes use (EKS has no gp3 class of its
#: own), and the Cluster Autoscaler in kube-system (GKE and AKS scale their pools themselves).
AUTOSCALER_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment")
ONLY_ON_EKS = {("StorageClass", cluster.FACTS["aws"].storage_class),
               *((kind, eks_facts.AUTOSCALER_ACCOUNT[1]) for kind in AUTOSCALER_KINDS)}


def test_the_workloads_are_the_kubernetes_targets_object_for_object(eks) -> None:
    profile, twin = _objects(eks(STACK)), _objects(eks(TWIN))
    assert set(twin) - set(profile) == ONLY_ON_KUBERNETES
    assert set(profile) - set(twin) == ONLY_ON_EKS
    for key in sorted(set(profile) & set(twin)):
        ours, theirs = _without_placement(profile[key]), _without_placement(twin[key])
        for path in CHANGED.get(key, ()):
            _drop(ours, path)
            _drop(theirs, path)
        assert ours == theirs, f"{key}: differs beyond what the profile documents"


def test_the_documented_changes_are_what_the_profile_says(eks) -> None:
    profile, twin = _objects(eks(STACK)), _objects(eks(TWIN))
    assert profile["ServiceAccount", "mlflow"] == twin["ServiceAccount", "mlflow"], "no annotation on EKS"
    command = " ".join(profile["Deployment", "mlflow"]["spec"]["template"]["spec"]["containers"][0]["command"])
    assert "--artifacts-destination s3://" in command
    ports = {p["port"] for rule in profile["NetworkPolicy", "mlflow"]["spec"]["egress"] for p in rule["ports"]}
    assert ports == {5432, 443, 80}
    for owner, _, pod in pod_specs(eks(STACK)):
        role = "training" if "-train" in owner else "system"
        assert pod.get("nodeSelector") == {cluster.POOL_LABEL: role}, owner
        if role == "training":
            assert {"key": cluster.POOL_LABEL, "operator": "Equal", "value": "training",
                    "effect": "NoSchedule"} in pod["tolerations"]
    (storage,) = [m for m in map(manifest, kube_objects(eks(STACK))) if m["kind"] == "StorageClass"]
    assert storage["provisioner"] == "ebs.csi.aws.com" and storage["parameters"] == {"type": "gp3",
                                                                                     "encrypted": "true"}
    claims = [m for m in map(manifest, kube_objects(eks(STACK))) if m["kind"] == "PersistentVolumeClaim"]
    assert claims and all(c["spec"]["storageClassName"] == storage["metadata"]["name"] for c in claims)


@pytest.mark.parametrize("stack", [STACK, "aws-eks-long"])
def test_every_object_is_strict_valid_for_the_clusters_version(eks, stack: str) -> None:
    failures = []
    for resource in kube_objects(eks(stack)):
        try:
            kubernetes_validate.validate(manifest(resource), eks_facts.KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{resource.type} {resource.name}: {exc.message}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("stack", [STACK, "aws-eks-long"])
def test_no_policy_violation_at_all(eks, stack: str) -> None:
    capture, spec = eks(stack), load_stack(stack, project_dir=eks.project).spec
    graph = Graph([r.to_json() for r in capture.resources], capture.outputs, Context.from_spec(spec))
    found = [(v.policy, v.mandatory, v.urn.rsplit("::", 1)[1]) for v in evaluate(graph)]
    # The autoscaler's image is a release tag (its digest was not looked up where this was written): in prod the
    # advisory images-pinned policy names it, and nothing else may appear.
    expected = [("images-pinned", False, "shipyard-prod-cluster-autoscaler")] if spec.environment == "prod" else []
    assert found == expected, [f"{v.policy}: {v.message}" for v in evaluate(graph)]


def test_names_fit_eks_limits_for_the_longest_spec(eks) -> None:
    capture = eks("aws-eks-long")
    (found,) = of_type(capture, EKS)
    assert len(found.inputs["name"]) <= LIMITS["eks_cluster"] == 100
    assert all(len(g.inputs["nodeGroupName"]) <= LIMITS["node_group"] == 63 for g in of_type(capture, NODE_GROUP))
    roles = of_type(capture, "aws:iam/role:Role")
    assert roles and all(len(r.name) + 8 <= LIMITS["iam_role"] for r in roles), "auto-names within IAM's 64"


# --- the Cluster Autoscaler --------------------------------------------------------------------------------

AUTOSCALER = eks_facts.AUTOSCALER_ACCOUNT[1]


def test_the_autoscaler_finds_only_this_clusters_groups() -> None:
    args = eks_facts.autoscaler_args("shipyard-prod-eks")
    assert "--cloud-provider=aws" in args and "--balance-similar-node-groups" in args
    assert ("--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
            "k8s.io/cluster-autoscaler/shipyard-prod-eks") in args
    assert not [a for a in args if a.startswith("--nodes=")], "auto-discovery, never fixed groups"
    assert eks_facts.AUTOSCALER_VERSION.startswith(f"v{eks_facts.EKS_VERSION}."), "the cluster's minor"


def test_the_autoscaler_resizes_only_groups_tagged_as_this_clusters() -> None:
    statements = eks_program.autoscaler_permissions("c1")
    writes = [s for s in statements if "autoscaling:SetDesiredCapacity" in s["Action"]]
    assert len(writes) == 1 and writes[0]["Action"] == ["autoscaling:SetDesiredCapacity",
                                                        "autoscaling:TerminateInstanceInAutoScalingGroup"]
    assert writes[0]["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/c1": "owned"}}
    reads = {a for s in statements if "Condition" not in s for a in s["Action"]}
    assert "eks:DescribeNodegroup" in reads, "labels and taints of a group at zero"
    assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in reads), reads
    assert not iam_wildcards(statements)


def iam_wildcards(statements: list[dict[str, Any]]) -> list[str]:
    return [a for s in statements for a in s["Action"] if a.endswith("*")]


def test_the_autoscaler_image_comes_through_a_pull_through_cache(eks) -> None:
    capture = eks(STACK)
    (rule,) = of_type(capture, "aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    assert rule.inputs["upstreamRegistryUrl"] == "registry.k8s.io" and "credentialArn" not in rule.inputs
    prefix = rule.inputs["ecrRepositoryPrefix"]
    (repository,) = [r for r in of_type(capture, "aws:ecr/repository:Repository") if r.inputs["name"].startswith(
        f"{prefix}/")]
    assert repository.inputs["name"] == f"{prefix}/autoscaling/cluster-autoscaler"
    assert repository.inputs["encryptionConfigurations"][0]["encryptionType"] == "KMS"
    (policy,) = of_type(capture, "aws:ecr/repositoryPolicy:RepositoryPolicy")
    (statement,) = _policy(policy)["Statement"]
    node_role = [r for r in of_type(capture, "aws:iam/role:Role") if "eks-nodes" in r.name]
    assert statement["Principal"]["AWS"].startswith(f"arn:aws:iam::123456789012:role/{node_role[0].name}-")
    assert statement["Action"] == ["ecr:BatchImportUpstreamImage"], "the nodes import; nothing else"
    (deployment,) = [manifest(r) for r in kube_objects(capture) if manifest(r)["kind"] == "Deployment"
                     and manifest(r)["metadata"]["name"] == AUTOSCALER]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == (f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{prefix}/autoscaling/cluster-autoscaler:"
                     f"{eks_facts.AUTOSCALER_VERSION}"), "pulled from the cache, not from registry.k8s.io"
    (long_rule,) = of_type(eks("aws-eks-long"), "aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    assert len(long_rule.inputs["ecrRepositoryPrefix"]) <= eks_facts.CACHE_PREFIX_LIMIT


def test_the_autoscaler_runs_on_the_system_group_for_this_cluster_with_its_own_identity(eks) -> None:
    capture = eks(STACK)
    (found,) = of_type(capture, EKS)
    objects = {(m["kind"], m["metadata"]["name"]): m for m in map(manifest, kube_objects(capture))}
    deployment = objects["Deployment", AUTOSCALER]
    assert deployment["metadata"]["namespace"] == "kube-system"
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == eks_facts.autoscaler_args(found.inputs["name"]), "this cluster's groups"
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in container["env"], "pods cannot read the metadata"
    assert container["resources"]["limits"] and container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["nodeSelector"] == {cluster.POOL_LABEL: "system"} and "tolerations" not in pod
    assert pod["serviceAccountName"] == AUTOSCALER and pod["priorityClassName"] == "system-cluster-critical"
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        assert objects[kind, AUTOSCALER]["subjects"] == [
            {"kind": "ServiceAccount", "name": AUTOSCALER, "namespace": "kube-system"}]
    rules = objects["ClusterRole", AUTOSCALER]["rules"]
    assert {"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch", "list", "get", "update"]} in rules
    assert not any("secrets" in r["resources"] or "*" in r["verbs"] for r in rules)
    (association,) = [a for a in of_type(capture, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
                      if a.inputs["serviceAccount"] == AUTOSCALER]
    assert association.inputs["namespace"] == "kube-system" and association.inputs["clusterName"] == found.inputs[
        "name"]
    (resource,) = [r for r in kube_objects(capture) if r.type == "kubernetes:apps/v1:Deployment"
                   and r.inputs["metadata"]["name"] == AUTOSCALER]
    assert association.urn in resource.dependencies, "credentials are injected at pod creation"
    (policy,) = [r for r in of_type(capture, "aws:iam/rolePolicy:RolePolicy")
                 if r.name == "shipyard-prod-cluster-autoscaler"]
    assert _policy(policy)["Statement"] == eks_program.autoscaler_permissions(found.inputs["name"])
