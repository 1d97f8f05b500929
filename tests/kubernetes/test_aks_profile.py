"""The AKS cluster profile (`azure.compute: kubernetes`): its rules, the cluster and its pools, the workload
identity bindings, and the Kubernetes target's workloads - object for object the same as the Kubernetes target
builds for the same spec, except the fields the profile is documented to change (docs/azure.md)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
import yaml
from image_checks import pushed_ref
from k8s_helpers import kube_objects, manifest, pod_specs, run_capture, twin_stack
from test_cluster_profile import _objects as objects
from test_cluster_profile import assert_same_workloads, make_spec, of_type, strict_failures, violations

from infra.plan_capture import Capture
from infra.plan_mocks import INVOKES
from infra.stackfile import load_stack
from infra.targets import cluster, load_target
from infra.targets.azure import aks, aks_facts, iam
from infra.targets.azure.names import RULES

STACK = "azure-aks-prod"
TWIN = "k8s-aks-twin"
LONG = "azure-aks-long"
AKS = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
ROLE = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
FEDERATED = "azure-native:managedidentity:FederatedIdentityCredential"
LONG_NAME, LONG_MODEL = "p" * 20 + "-" + "q" * 19, "m" * 40

#: A dev AKS stack with the longest names a spec allows and GPU training on Spot capacity.
LONG_STACK = f"""\
config:
  shipyard:target: azure
  shipyard:name: {LONG_NAME}
  shipyard:environment: dev
  shipyard:region: eastus2
  shipyard:azure: {{compute: kubernetes}}
  shipyard:training: {{size: gpu, gpu_count: 4, spot: true, max_nodes: 3}}
  shipyard:models:
    - {{name: churn, remove: true}}
    - name: {LONG_MODEL}
"""




@pytest.fixture(scope="module")
def captured(project_copy: Callable) -> Callable[[str], Capture]:
    """Captures of the AKS stacks and the Kubernetes twin, once per module."""
    project = project_copy({LONG: LONG_STACK})
    cache: dict[str, Capture] = {}

    def get(stack: str) -> Capture:
        if stack == TWIN and stack not in cache:
            (image,) = {c["image"] for _, _, pod in pod_specs(get(STACK)) for c in pod["containers"]}
            (project / "stacks" / f"Pulumi.{TWIN}.yaml").write_text(twin_stack(project, STACK, image.partition("@")[0]))
        if stack not in cache:
            cache[stack] = run_capture(project, stack)
        return cache[stack]

    get.project = project  # type: ignore[attr-defined]
    return get


def _role(resource) -> str:
    """The built-in role key of a captured role assignment."""
    guid = resource.inputs["roleDefinitionId"].rsplit("/", 1)[1]
    return next(key for key, value in iam.ROLES.items() if value == guid)


def _from(capture: Capture, resource, prop: str) -> set[str]:
    """The names of the resources an input of `resource` comes from (its property dependencies)."""
    names = {r.urn: r.name for r in capture.resources}
    return {names[urn] for urn in resource.property_dependencies.get(prop, ())}


def _grants(capture: Capture) -> list[tuple[str, str, str]]:
    """(principal, role, scope) of every role assignment, by the resources' logical names ('deployer' for the
    deployer, who is no resource of the stack)."""
    return sorted((",".join(sorted(_from(capture, r, "principalId"))) or "deployer", _role(r),
                   ",".join(sorted(_from(capture, r, "scope")))) for r in of_type(capture, ROLE))


# --- rules -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_a_default_aks_spec_is_built_as_written(environment: str) -> None:
    spec = make_spec("azure", environment=environment)
    assert load_target("azure").check(spec) == []
    if environment == "dev":
        assert load_target("azure").ignored(spec) == []


@pytest.mark.parametrize(("overrides", "path", "words"), [
    ({"models": [{"name": "churn", "serving": {"public": True, "auth": "api_key"}}]},
     "models[0].serving.public", "not available on the AKS cluster profile"),
    ({"training": {"size": "gpu", "gpu_count": 2}}, "training.gpu_count", "1, 4"),
    ({"azure": {"compute": "kubernetes", "vnet_cidr": "10.244.0.0/22"}}, "azure.vnet_cidr", "overlaps"),
    ({"azure": {"compute": "kubernetes", "vnet_cidr": "10.0.0.0/8"}}, "azure.vnet_cidr", "10.244.0.0/16"),
    ({"region": "West Europe"}, "region", "display name"),
])
def test_check_refuses_what_aks_or_the_workloads_cannot_do(overrides: dict, path: str, words: str) -> None:
    problems = [p for p in load_target("azure").check(make_spec("azure", **overrides)) if p.path == path]
    assert problems and words in problems[0].message, load_target("azure").check(make_spec("azure", **overrides))


def test_managed_only_rules_do_not_apply_on_the_cluster() -> None:
    """A GPU outside Container Apps' GPU regions, 4 GPUs, and a Kubernetes Secret reference are fine on AKS; the
    same spec on the managed profile is refused."""
    overrides = {"region": "northeurope", "training": {"size": "gpu", "gpu_count": 4},
                 "registry": {"database": {"external_url": {"ref": "pg/uri"}}}}
    assert load_target("azure").check(make_spec("azure", **overrides)) == []
    managed = make_spec("azure", **overrides, azure={})
    assert {p.path for p in load_target("azure").check(managed)} == {
        "training.size", "training.gpu_count", "registry.database.external_url.ref"}


def test_ignored_drops_what_the_cloud_side_honours_and_names_the_rest() -> None:
    spec = make_spec("azure", environment="prod", training={"min_nodes": 1, "max_nodes": 5, "spot": True},
                     tags={"team": "ml"}, networking={"allowed_cidrs": ["203.0.113.0/24"]},
                     registry={"artifacts": {"s3_endpoint": "https://s3.example.com", "bucket": "b"}})
    paths = {n.path for n in load_target("azure").ignored(spec)}
    assert paths == {"registry.artifacts.s3_endpoint", "registry.artifacts.bucket",
                     "models[0].serving.rollout.strategy"}, paths
    managed = {n.path for n in load_target("azure").ignored(make_spec(
        "azure", environment="prod", azure={}, training={"spot": True, "min_nodes": 1}))}
    assert {"training.spot", "training.min_nodes"} <= managed, "the reverse: what only the cluster honours"


# --- pools (pure) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("training", [{"size": "small", "spot": False}, {"size": "large", "spot": True},
                                      {"size": "gpu", "gpu_count": 1, "spot": True},
                                      {"size": "gpu", "gpu_count": 4, "spot": False}])
def test_pool_names_fit_aks_and_are_unique(training: dict) -> None:
    pools = aks_facts.pool_plans(make_spec("azure", training=training))
    names = [p.name for p in pools]
    assert len(set(names)) == len(names)
    assert all(RULES["node_pool"].accepts(name) and len(name) <= 12 for name in names), names
    assert [p.name for p in pools if p.system] == ["system"]


def test_pools_follow_the_size_table_and_the_training_bounds() -> None:
    pools = {p.name: p for p in aks_facts.pool_plans(make_spec(
        "azure", environment="prod", training={"size": "large", "min_nodes": 1, "max_nodes": 4, "spot": True}))}
    assert set(pools) == {"system", "cpu", "cpuspot"}
    assert (pools["system"].min_nodes, pools["system"].max_nodes) == cluster.SYSTEM_NODES["prod"]
    assert pools["system"].taints == () and pools["system"].labels == {cluster.POOL_LABEL: "system"}
    cpu, spot = pools["cpu"], pools["cpuspot"]
    assert (cpu.machine, cpu.min_nodes, cpu.max_nodes, cpu.spot) == ("Standard_D8s_v5", 1, 4, False)
    assert (spot.min_nodes, spot.max_nodes, spot.spot) == (0, 4, True), "spot scales from zero"
    assert aks_facts.node_taints(cpu) == ["shipyard.io/pool=training:NoSchedule"]
    assert aks_facts.node_taints(spot) == ["shipyard.io/pool=training:NoSchedule",
                                "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]
    assert cpu.labels == spot.labels == {cluster.POOL_LABEL: "training"}
    default = aks_facts.pool_plans(make_spec("azure", training={"spot": False}))
    assert [(p.name, p.min_nodes) for p in default] == [("system", 1), ("cpu", 0)], "training scales from zero"


def test_gpu_training_gets_a_tainted_gpu_pool() -> None:
    pools = aks_facts.pool_plans(make_spec("azure", training={"size": "gpu", "gpu_count": 4, "spot": False}))
    assert [p.name for p in pools] == ["system", "gpu"]
    gpu = pools[1]
    assert (gpu.machine, gpu.gpus, gpu.min_nodes) == ("Standard_NC64as_T4_v3", 4, 0)
    assert "nvidia.com/gpu=present:NoSchedule" in aks_facts.node_taints(gpu)


def test_the_kubeconfig_keeps_no_credential() -> None:
    listed = INVOKES["azure-native:containerservice:listManagedClusterUserCredentials"](
        {"resourceName": "c", "resourceGroupName": "g"}, make_spec("azure"))
    raw = yaml.safe_load(base64.b64decode(listed["kubeconfigs"][0]["value"]))
    raw["users"][0]["user"].update({"token": "t", "client-key-data": "k"})  # a local-account kubeconfig
    config = json.loads(aks.kubeconfig(base64.b64encode(yaml.safe_dump(raw).encode()).decode()))
    (user,) = config["users"]
    assert set(user["user"]) == {"exec"}, "tokens and keys are dropped"
    assert user["user"]["exec"]["command"] == "kubelogin"
    assert user["user"]["exec"]["args"][:3] == ["get-token", "--login", "azurecli"]
    assert config["clusters"] == raw["clusters"]


# --- the AKS program ---------------------------------------------------------------------------------------


def test_the_cluster_has_workload_identity_entra_rbac_and_enforced_policies(captured) -> None:
    capture = captured(STACK)
    (resource,) = of_type(capture, AKS)
    body = resource.inputs
    assert body["oidcIssuerProfile"]["enabled"] is True
    assert body["securityProfile"]["workloadIdentity"]["enabled"] is True
    assert body["aadProfile"]["managed"] is True and body["aadProfile"]["enableAzureRBAC"] is True
    assert body["disableLocalAccounts"] is True, "no static admin credential exists"
    network = body["networkProfile"]
    assert (network["networkPlugin"], network["networkPluginMode"], network["networkPolicy"]) == (
        "azure", "overlay", "cilium"), "Cilium enforces the workloads' NetworkPolicies"
    assert body["apiServerAccessProfile"]["authorizedIPRanges"] == ["203.0.113.0/24"]
    assert body["identity"]["type"] == "UserAssigned"
    assert body["storageProfile"]["fileCSIDriver"]["enabled"] is True, "prod's ReadWriteMany volume"
    (system,) = body["agentPoolProfiles"]
    assert system["vnetSubnetID"].endswith("/shipyard-prod-nodes")
    assert resource.protect, "prod protects the cluster"


def test_pools_carry_their_bounds_taints_and_labels(captured) -> None:
    spec = load_stack(STACK, project_dir=captured.project).spec
    plans = {p.name: p for p in aks_facts.pool_plans(spec)}
    (resource,) = of_type(captured(STACK), AKS)
    pools = {r.inputs["agentPoolName"]: r.inputs for r in of_type(captured(STACK), POOL)}
    pools.update({p["name"]: p for p in resource.inputs["agentPoolProfiles"]})
    assert set(pools) == set(plans) == {"system", "cpu", "cpuspot"}
    for name, pool in pools.items():
        plan = plans[name]
        assert pool["enableAutoScaling"] is True
        assert (pool["minCount"], pool["maxCount"]) == (plan.min_nodes, plan.max_nodes)
        assert pool["vmSize"] == plan.machine and pool["nodeLabels"] == plan.labels
        assert pool.get("nodeTaints", []) == aks_facts.node_taints(plan)
        assert pool["mode"] == ("System" if plan.system else "User")
        assert (pool.get("scaleSetPriority") == "Spot") == plan.spot
        assert pool["vnetSubnetID"].endswith("/shipyard-prod-nodes") and not pool["enableNodePublicIP"]
    assert pools["cpu"]["minCount"] == pools["cpu"]["count"] == 0, "training scales from zero"


def test_gpu_pools_have_the_driver_and_the_gpu_taint(captured) -> None:
    pools = {r.inputs["agentPoolName"]: r.inputs for r in of_type(captured(LONG), POOL)}
    assert set(pools) == {"gpu", "gpuspot"}
    for pool in pools.values():
        assert pool["vmSize"] == "Standard_NC64as_T4_v3" and pool["gpuProfile"]["driver"] == "Install"
        assert "nvidia.com/gpu=present:NoSchedule" in pool["nodeTaints"]
    (resource,) = of_type(captured(LONG), AKS)
    assert "gpuProfile" not in resource.inputs["agentPoolProfiles"][0]


def test_only_the_tracking_server_gets_an_azure_identity_with_only_its_container(captured) -> None:
    capture = captured(STACK)
    (federated,) = of_type(capture, FEDERATED)
    assert federated.inputs["subject"] == "system:serviceaccount:shipyard-prod:mlflow"
    assert federated.inputs["audiences"] == [aks.TOKEN_AUDIENCE]
    assert federated.inputs["issuer"].startswith("https://") and _from(capture, federated, "issuer") == {
        "shipyard-prod-aks"}, "trusts the cluster's own OIDC issuer"
    assert _from(capture, federated, "resourceName") == {"shipyard-prod-mlflow"}
    assert _grants(capture) == [
        ("deployer", "aks_cluster_admin", "shipyard-prod-aks"),
        ("shipyard-prod-aks-control", "identity_operator", "shipyard-prod-aks-kubelet"),
        ("shipyard-prod-aks-control", "network_contributor", "shipyard-prod-nodes"),
        ("shipyard-prod-aks-kubelet", "acr_pull", "shipyard-prod-acr"),
        ("shipyard-prod-mlflow", "blob_contributor", "shipyard-prod-mlflow")], "the container, not the account"
    accounts = {r.inputs["metadata"]["name"]: r for r in kube_objects(capture) if r.type.endswith(":ServiceAccount")}
    mlflow = accounts.pop("mlflow")
    assert list(mlflow.inputs["metadata"]["annotations"]) == [aks.CLIENT_ID_ANNOTATION]
    assert _from(capture, mlflow, "metadata") >= {"shipyard-prod-mlflow"}, "the mlflow identity's client id"
    assert not any(r.inputs["metadata"].get("annotations") for r in accounts.values())
    labelled = {owner for owner, meta, _ in pod_specs(capture) if meta["labels"].get(aks.USE_LABEL[0]) == "true"}
    assert labelled == {"Deployment/mlflow"}, "only the tracking server's pods get a token"


def test_no_node_wide_credentials(captured) -> None:
    """The kubelet identity (what every node holds) may only pull images; the nodes get no other identity."""
    capture = captured(STACK)
    (resource,) = of_type(capture, AKS)
    assert "shipyard-prod-aks-kubelet" in _from(capture, resource, "identityProfile")
    assert [role for principal, role, _ in _grants(capture) if principal == "shipyard-prod-aks-kubelet"] == ["acr_pull"]
    assert _from(capture, resource, "identity") == {"shipyard-prod-aks-control"}, "the control plane's own identity"
    assert all("identity" not in p for p in [*resource.inputs["agentPoolProfiles"],
                                             *(r.inputs for r in of_type(capture, POOL))])


def test_every_kubernetes_object_is_on_the_clusters_provider(captured) -> None:
    capture = captured(STACK)
    (provider,) = of_type(capture, "pulumi:providers:kubernetes")
    config = json.loads(provider.inputs["kubeconfig"])
    assert config["users"][0]["user"]["exec"]["command"] == "kubelogin", "no credential inside"
    assert config["clusters"][0]["cluster"]["server"] == "https://shipyard-prod-aks-dns.hcp.westeurope.azmk8s.io:443"
    objects = kube_objects(capture, include_custom=True)
    assert objects and all(r.provider.startswith(provider.urn) for r in objects)
    admin = next(r for r in of_type(capture, ROLE) if _role(r) == "aks_cluster_admin")
    assert set(provider.dependencies) >= {r.urn for r in of_type(capture, POOL)} | {admin.urn}, \
        "objects wait for the pools and the deployer's cluster role"


def test_the_database_artifacts_and_image_are_azures(captured) -> None:
    capture = captured(STACK)
    assert len(of_type(capture, "azure-native:dbforpostgresql:Server")) == 1
    assert [r.inputs["containerName"] for r in of_type(capture, "azure-native:storage:BlobContainer")] == ["mlflow"]
    assert capture.outputs["artifact_uri"].startswith("wasbs://mlflow@")
    kinds = {m["kind"] for m in map(manifest, kube_objects(capture))}
    assert "StatefulSet" not in kinds, "no in-cluster PostgreSQL"
    assert not of_type(capture, "azure-native:app:ManagedEnvironment") and not of_type(
        capture, "azure-native:keyvault:Vault"), "nothing of the managed profile that the cluster does not use"
    images = {c["image"] for _, _, pod in pod_specs(capture) for c in pod["containers"]}
    pushed = pushed_ref(capture, captured.project, STACK)  # built and pushed once, by the Azure foundation
    assert images == {pushed} and pushed.startswith(f"{capture.outputs['image_repository']}/")


def test_the_workloads_are_the_kubernetes_targets_object_for_object(captured) -> None:
    profile = objects(captured(STACK))
    labels = profile["Deployment", "mlflow"]["spec"]["template"]["metadata"]["labels"]
    assert labels.pop(aks.USE_LABEL[0]) == aks.USE_LABEL[1], "the one change AKS adds to GKE's (CHANGED)"
    assert_same_workloads(profile, objects(captured(TWIN)))


def test_the_documented_changes_are_what_the_profile_says(captured) -> None:
    profile = objects(captured(STACK))
    command = " ".join(profile["Deployment", "mlflow"]["spec"]["template"]["spec"]["containers"][0]["command"])
    assert "--artifacts-destination wasbs://mlflow@" in command
    ports = {p["port"] for rule in profile["NetworkPolicy", "mlflow"]["spec"]["egress"] for p in rule["ports"]}
    assert ports == {5432, 443}
    for owner, _, pod in pod_specs(captured(STACK)):
        pool = "training" if "-train" in owner else "system"
        assert pod.get("nodeSelector") == {cluster.POOL_LABEL: pool}, owner
        if pool == "training":
            assert {"key": cluster.POOL_LABEL, "operator": "Equal", "value": "training",
                    "effect": "NoSchedule"} in pod["tolerations"]


@pytest.mark.parametrize("stack", [STACK, LONG])
def test_every_object_is_strict_valid_for_the_clusters_version(captured, stack: str) -> None:
    failures = strict_failures(captured(stack), aks_facts.KUBERNETES_VERSION)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("stack", [STACK, LONG])
def test_no_policy_violation_at_all(captured, stack: str) -> None:
    assert violations(captured(stack), load_stack(stack, project_dir=captured.project).spec) == []


def test_names_fit_aks_limits_for_the_longest_spec(captured) -> None:
    capture = captured(LONG)
    (resource,) = of_type(capture, AKS)
    for kind, name in (("cluster", resource.inputs["resourceName"]), ("dns_prefix", resource.inputs["dnsPrefix"]),
                       ("resource_group", resource.inputs["nodeResourceGroup"])):
        assert RULES[kind].accepts(name), (kind, name)
    assert all(RULES["node_pool"].accepts(p.inputs["agentPoolName"]) for p in of_type(capture, POOL))
    assert all(RULES["identity"].accepts(r.inputs["resourceName"]) for r in of_type(capture, IDENTITY))
