"""The cloud targets' cluster profile (`<cloud>.compute: kubernetes`): its rules, and on GKE the cluster, the pools,
the identity bindings, and the Kubernetes target's workloads - object for object the same as the Kubernetes
target builds for the same spec, except the fields the profile is documented to change (docs/gcp.md)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from k8s_helpers import kube_objects, manifest, pod_specs, run_capture, twin_stack

from infra.merge import with_defaults
from infra.plan_capture import Capture
from infra.policies import Context, Graph, evaluate
from infra.spec import PlatformSpec
from infra.stackfile import load_stack
from infra.targets import cluster, load_target
from infra.targets.gcp import gke_facts
from infra.targets.gcp.names import LIMITS, gcp_name

ROOT = Path(__file__).resolve().parents[2]
STACK = "gcp-gke-prod"
TWIN = "k8s-twin"
POOL = "gcp:container/nodePool:NodePool"
GKE = "gcp:container/cluster:Cluster"
LONG_NAME, LONG_MODEL = "p" * 20 + "-" + "q" * 19, "m" * 40

#: A dev GKE stack with the longest names a spec allows and GPU training on spot capacity.
LONG_STACK = f"""\
config:
  shipyard:target: gcp
  shipyard:name: {LONG_NAME}
  shipyard:environment: dev
  shipyard:region: us-central1
  shipyard:gcp: {{project: a-thirty-character-project-id0, compute: kubernetes}}
  shipyard:training: {{size: gpu, gpu_count: 2, spot: true, max_nodes: 3}}
  shipyard:models:
    - {{name: churn, remove: true}}
    - name: {LONG_MODEL}
"""


def gke_repository(project: Path) -> str:
    """The Artifact Registry repository the GKE profile pushes the runtime image to."""
    spec = load_stack(STACK, project_dir=project).spec
    repository = gcp_name(spec.prefix, "runtime", kind="repository")
    return f"{spec.region}-docker.pkg.dev/{spec.gcp_settings.project}/{repository}"


@pytest.fixture(scope="module")
def gke(project_copy: Callable) -> Callable[[str], Capture]:
    """Captures of the GKE stacks and the Kubernetes twin, once per module."""
    project = project_copy({"gcp-gke-long": LONG_STACK})
    (project / "stacks" / f"Pulumi.{TWIN}.yaml").write_text(twin_stack(project, STACK, gke_repository(project)))
    cache: dict[str, Capture] = {}

    def get(stack: str) -> Capture:
        if stack not in cache:
            cache[stack] = run_capture(project, stack)
        return cache[stack]

    get.project = project  # type: ignore[attr-defined]
    return get


def of_type(capture: Capture, token: str) -> list:
    return [r for r in capture.resources if r.type == token]


def make_spec(target: str = "gcp", **overrides: Any) -> PlatformSpec:
    sections = {"gcp": {"gcp": {"project": "acme-ml-dev", "compute": "kubernetes"}},
                "aws": {"aws": {"compute": "kubernetes"}}, "azure": {"azure": {"compute": "kubernetes"}}}
    regions = {"gcp": "europe-west1", "aws": "eu-west-1", "azure": "westeurope"}
    overlay = {"target": target, "region": regions[target], "models": [{"name": "churn"}], **sections[target]}
    return PlatformSpec.model_validate(with_defaults({}, {**overlay, **overrides})[0])


# --- rules -------------------------------------------------------------------------------------------------


def test_the_profile_key_defaults_to_managed_and_is_read_per_cloud() -> None:
    assert make_spec().compute == "kubernetes"
    spec = PlatformSpec.model_validate(with_defaults({}, {"target": "gcp", "region": "europe-west1",
                                                         "gcp": {"project": "acme-ml-dev"},
                                                         "models": [{"name": "churn"}]})[0])
    assert spec.compute == "managed" and not cluster.on_cluster(spec)
    with pytest.raises(ValueError, match="compute"):
        make_spec(gcp={"project": "acme-ml-dev", "compute": "serverless"})


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_a_default_gke_spec_is_built_as_written(environment: str) -> None:
    spec = make_spec(environment=environment)
    assert load_target("gcp").check(spec) == []
    if environment == "dev":
        assert load_target("gcp").ignored(spec) == []


@pytest.mark.parametrize(("overrides", "path", "words"), [
    ({"models": [{"name": "churn", "serving": {"public": True, "auth": "api_key"}}]},
     "models[0].serving.public", "not available on the GKE cluster profile"),
    ({"models": [{"name": "churn", "serving": {"auth": "iam"}}]}, "models[0].serving.auth", "'iam'"),
    ({"training": {"size": "gpu", "gpu_count": 3}}, "training.gpu_count", "1, 2, 4, 8"),
    ({"gcp": {"project": "acme-ml-dev", "compute": "kubernetes", "subnet_cidr": "10.64.0.0/20"}},
     "gcp.subnet_cidr", "overlaps"),
    ({"models": [{"name": "m" * 40 + "x"}]}, "models[0].name", ""),
])
def test_check_refuses_what_gke_or_the_workloads_cannot_do(overrides: dict, path: str, words: str) -> None:
    try:
        spec = make_spec(**overrides)
    except ValueError:  # the spec itself refuses it (a 41-character name): nothing for the rules to see
        assert path == "models[0].name"
        return
    problems = [p for p in load_target("gcp").check(spec) if p.path == path]
    assert problems and words in problems[0].message, load_target("gcp").check(spec)


def test_managed_only_rules_do_not_apply_on_the_cluster() -> None:
    """A GPU outside Cloud Run's GPU regions, a Cloud Scheduler-only cron and a Kubernetes Secret reference are
    fine on GKE; the same spec on the managed profile is refused."""
    overrides = {"region": "southamerica-east1", "training": {"size": "gpu", "gpu_count": 1},
                 "registry": {"database": {"external_url": {"ref": "pg/uri"}}}}
    assert load_target("gcp").check(make_spec(**overrides)) == []
    managed = make_spec(**overrides, gcp={"project": "acme-ml-dev"})
    assert {p.path for p in load_target("gcp").check(managed)} == {"training.size",
                                                                   "registry.database.external_url.ref"}


def test_ignored_drops_what_the_cloud_side_honours_and_names_the_rest() -> None:
    spec = make_spec(environment="prod", training={"min_nodes": 1, "max_nodes": 5, "spot": True},
                     tags={"team": "ml"}, networking={"allowed_cidrs": ["203.0.113.0/24"]},
                     registry={"artifacts": {"s3_endpoint": "https://s3.example.com", "bucket": "b"}})
    paths = {n.path for n in load_target("gcp").ignored(spec)}
    assert paths == {"registry.artifacts.s3_endpoint", "registry.artifacts.bucket",
                     "models[0].serving.rollout.strategy"}, paths
    managed = {n.path for n in load_target("gcp").ignored(make_spec(
        environment="prod", gcp={"project": "acme-ml-dev"}, training={"spot": True, "min_nodes": 1}))}
    assert {"training.spot", "training.min_nodes"} <= managed, "the reverse: what only the cluster honours"


# --- pools (pure) ------------------------------------------------------------------------------------------


def test_pools_follow_the_size_table_and_the_training_bounds() -> None:
    pools = {p.name: p for p in gke_facts.pool_plans(make_spec(
        environment="prod", training={"size": "large", "min_nodes": 1, "max_nodes": 4, "spot": True}))}
    assert set(pools) == {"system", "training", "training-spot"}
    assert (pools["system"].min_nodes, pools["system"].max_nodes) == cluster.SYSTEM_NODES["prod"]
    assert pools["system"].taints == () and pools["system"].labels == {cluster.POOL_LABEL: "system"}
    training, spot = pools["training"], pools["training-spot"]
    assert (training.machine, training.min_nodes, training.max_nodes, training.spot) == ("n2-standard-8", 1, 4, False)
    assert (spot.min_nodes, spot.max_nodes, spot.spot) == (0, 4, True), "spot scales from zero"
    assert training.taints == (cluster.TRAINING_TAINT,)
    assert spot.taints == (cluster.TRAINING_TAINT, gke_facts.SPOT_TAINT)
    assert training.labels == spot.labels == {cluster.POOL_LABEL: "training"}


def test_gpu_training_gets_a_tainted_gpu_pool_and_no_spot_pool_without_spot() -> None:
    pools = gke_facts.pool_plans(make_spec(environment="prod", training={"size": "gpu", "gpu_count": 4,
                                                                         "spot": False}))
    assert [p.name for p in pools] == ["system", "training"]
    gpu = pools[1]
    assert (gpu.machine, gpu.gpus, gpu.min_nodes) == ("g2-standard-48", 4, 0)
    assert cluster.GPU_TAINT in gpu.taints


# --- the GKE program ---------------------------------------------------------------------------------------


def test_the_cluster_is_private_encrypted_and_on_workload_identity(gke) -> None:
    capture = gke(STACK)
    (cluster_resource,) = of_type(capture, GKE)
    body = cluster_resource.inputs
    assert body["privateClusterConfig"]["enablePrivateNodes"] is True
    assert body["workloadIdentityConfig"]["workloadPool"] == "acme-ml-prod.svc.id.goog"
    assert body["datapathProvider"] == "ADVANCED_DATAPATH", "Dataplane V2 enforces the NetworkPolicies"
    assert body["databaseEncryption"]["state"] == "ENCRYPTED" and body["databaseEncryption"]["keyName"]
    assert body["removeDefaultNodePool"] is True
    assert [b["cidrBlock"] for b in body["masterAuthorizedNetworksConfig"]["cidrBlocks"]] == ["203.0.113.0/24"]
    assert body["addonsConfig"]["gcpFilestoreCsiDriverConfig"]["enabled"] is True, "prod's ReadWriteMany volume"
    assert body["subnetwork"].endswith("/subnetworks/shipyard-prod-workloads")
    assert cluster_resource.protect, "prod protects the cluster"


def test_pools_carry_their_bounds_taints_and_labels(gke) -> None:
    spec = load_stack(STACK, project_dir=gke.project).spec
    plans = {p.name: p for p in gke_facts.pool_plans(spec)}
    pools = {r.inputs["name"]: r.inputs for r in of_type(gke(STACK), POOL)}
    assert set(pools) == set(plans) == {"system", "training", "training-spot"}
    for name, pool in pools.items():
        plan, config = plans[name], pool["nodeConfig"]
        assert (pool["autoscaling"]["totalMinNodeCount"], pool["autoscaling"]["totalMaxNodeCount"]) == (
            plan.min_nodes, plan.max_nodes)
        assert config["machineType"] == plan.machine and bool(config.get("spot")) == plan.spot
        assert config["labels"] == plan.labels
        assert [(t["key"], t["value"], t["effect"]) for t in config.get("taints", [])] == [
            (key, value, "NO_SCHEDULE") for key, value in plan.taints]
        assert config["workloadMetadataConfig"]["mode"] == "GKE_METADATA", f"{name}: pods never see node credentials"
    assert pools["training"]["autoscaling"]["totalMinNodeCount"] == 0, "training scales from zero"


def test_gpu_pools_have_accelerators_and_the_gpu_taint(gke) -> None:
    pools = {r.inputs["name"]: r.inputs["nodeConfig"] for r in of_type(gke("gcp-gke-long"), POOL)}
    for name in ("training", "training-spot"):
        (accelerator,) = pools[name]["guestAccelerators"]
        assert (accelerator["type"], accelerator["count"]) == (gke_facts.GPU_ACCELERATOR, 2)
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"} in pools[name]["taints"]
    assert "guestAccelerators" not in pools["system"]


def test_only_the_tracking_server_gets_a_google_identity_with_only_its_prefix(gke) -> None:
    capture = gke(STACK)
    (binding,) = of_type(capture, "gcp:serviceaccount/iAMMember:IAMMember")
    assert binding.inputs["role"] == "roles/iam.workloadIdentityUser"
    assert binding.inputs["member"] == "serviceAccount:acme-ml-prod.svc.id.goog[shipyard-prod/mlflow]"
    mlflow_email = "shipyard-prod-mlflow@acme-ml-prod.iam.gserviceaccount.com"
    assert binding.inputs["serviceAccountId"].endswith(mlflow_email)
    grants = of_type(capture, "gcp:storage/bucketIAMMember:BucketIAMMember")
    assert [(g.inputs["member"], g.inputs["role"]) for g in grants] == [
        (f"serviceAccount:{mlflow_email}", "roles/storage.objectUser")]
    assert "/objects/mlflow/" in grants[0].inputs["condition"]["expression"]
    annotated = {m["metadata"]["name"]: m["metadata"].get("annotations") for m in map(manifest, kube_objects(capture))
                 if m["kind"] == "ServiceAccount"}
    assert annotated.pop("mlflow") == {"iam.gke.io/gcp-service-account": mlflow_email}
    assert not any(annotated.values()), annotated


def test_the_nodes_account_holds_no_data_access(gke) -> None:
    capture = gke(STACK)
    roles = sorted(r.inputs["role"] for r in of_type(capture, "gcp:projects/iAMMember:IAMMember"))
    assert all(r.inputs["member"].startswith("serviceAccount:shipyard-prod-nodes@")
               for r in of_type(capture, "gcp:projects/iAMMember:IAMMember"))
    assert not [role for role in roles if "storage" in role or "admin" in role or role.endswith("editor")], roles
    (pull,) = of_type(capture, "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    assert pull.inputs["role"] == "roles/artifactregistry.reader"


def test_every_kubernetes_object_is_on_the_clusters_provider(gke) -> None:
    capture = gke(STACK)
    (provider,) = of_type(capture, "pulumi:providers:kubernetes")
    config = json.loads(provider.inputs["kubeconfig"])
    assert config["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin", "no credential inside"
    assert config["clusters"][0]["cluster"]["server"] == "https://34.118.0.10"
    objects = kube_objects(capture, include_custom=True)
    assert objects and all(r.provider.startswith(provider.urn) for r in objects)
    assert set(provider.dependencies) >= {r.urn for r in of_type(capture, POOL)}, "objects wait for the pools"


def test_the_database_and_artifacts_are_the_clouds(gke) -> None:
    capture = gke(STACK)
    assert len(of_type(capture, "gcp:sql/databaseInstance:DatabaseInstance")) == 1
    assert capture.outputs["artifact_uri"].startswith("gs://") and capture.outputs["artifact_uri"].endswith("/mlflow")
    kinds = {m["kind"] for m in map(manifest, kube_objects(capture))}
    assert "StatefulSet" not in kinds, "no in-cluster PostgreSQL"
    assert capture.outputs["tracking_uri"] == "http://mlflow.shipyard-prod.svc.cluster.local:5000"


#: What the profile is documented to change in an object the Kubernetes target also declares (docs/gcp.md,
#: "What the profile changes"), by (kind, name): dotted paths removed from both before comparing.
CHANGED: dict[tuple[str, str], tuple[str, ...]] = {
    ("ServiceAccount", "mlflow"): ("metadata.annotations",),
    ("Secret", "mlflow-backend-store"): ("stringData",),
    ("Deployment", "mlflow"): ("spec.replicas", "spec.strategy", "spec.template.spec.volumes",
                               "spec.template.spec.containers.0.command",
                               "spec.template.spec.containers.0.volumeMounts"),
    ("NetworkPolicy", "mlflow"): ("spec.egress",),
}
#: Objects of the built-in PostgreSQL and the artifact volume, which the cloud's database and bucket replace.
ONLY_ON_KUBERNETES = {("StatefulSet", "postgresql"), ("Service", "postgresql"), ("ServiceAccount", "postgresql"),
                      ("NetworkPolicy", "postgresql"), ("PersistentVolumeClaim", "mlflow-artifacts")}


def _drop(body: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.get(part, {})
    if isinstance(node, dict):
        node.pop(last, None)


def _without_placement(body: dict[str, Any]) -> dict[str, Any]:
    """The object without the pool placement (node selector, the training pools' toleration)."""
    body = copy.deepcopy(body)
    for pod in _pods(body):
        pod.pop("nodeSelector", None)
        kept = [t for t in pod.get("tolerations", []) if t["key"] != cluster.POOL_LABEL]
        pod.pop("tolerations", None)
        if kept:
            pod["tolerations"] = kept
    return body


def _pods(body: dict[str, Any]) -> list[dict[str, Any]]:
    spec = body.get("spec", {})
    if body["kind"] in ("Deployment", "StatefulSet", "Job"):
        return [spec["template"]["spec"]]
    if body["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    return []


def _objects(capture: Capture) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for resource in kube_objects(capture, include_custom=True):
        body = manifest(resource)
        found[body["kind"], body["metadata"]["name"]] = body
    return found


def assert_same_workloads(profile: dict[tuple[str, str], dict[str, Any]],
                           twin: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The profile's objects are the twin's, object for object, but for the documented changes (`CHANGED`, the
    placement) and the objects the cloud's database and store replace."""
    assert set(twin) - set(profile) == ONLY_ON_KUBERNETES
    assert set(profile) - set(twin) == set(), "the profile adds no Kubernetes object"
    for key in sorted(profile):
        ours, theirs = _without_placement(profile[key]), _without_placement(twin[key])
        for path in CHANGED.get(key, ()):
            _drop(ours, path)
            _drop(theirs, path)
        assert ours == theirs, f"{key}: differs beyond what the profile documents"


def strict_failures(capture: Capture, version: str) -> list[str]:
    """Every Kubernetes object of `capture` that is not strict-valid for the cluster's `version`."""
    failures = []
    for resource in kube_objects(capture):
        try:
            kubernetes_validate.validate(manifest(resource), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{resource.type} {resource.name}: {exc.message}")
    return failures


def violations(capture: Capture, spec: PlatformSpec) -> list[str]:
    """Every policy violation of `capture`, mandatory or not."""
    graph = Graph([r.to_json() for r in capture.resources], capture.outputs, Context.from_spec(spec))
    return [f"{v.policy}: {v.message}" for v in evaluate(graph)]


def test_the_workloads_are_the_kubernetes_targets_object_for_object(gke) -> None:
    assert_same_workloads(_objects(gke(STACK)), _objects(gke(TWIN)))


def test_the_documented_changes_are_what_the_profile_says(gke) -> None:
    profile = _objects(gke(STACK))
    command = " ".join(profile["Deployment", "mlflow"]["spec"]["template"]["spec"]["containers"][0]["command"])
    assert "--artifacts-destination gs://" in command
    ports = {p["port"] for rule in profile["NetworkPolicy", "mlflow"]["spec"]["egress"] for p in rule["ports"]}
    assert ports == {5432, 443, 80, 988}
    placed = {owner: pod.get("nodeSelector") for owner, _, pod in pod_specs(gke(STACK))}
    assert all(selector == {cluster.POOL_LABEL: "training"} for owner, selector in placed.items()
               if "-train" in owner), placed
    assert all(selector == {cluster.POOL_LABEL: "system"} for owner, selector in placed.items()
               if "-train" not in owner), placed
    for owner, _, pod in pod_specs(gke(STACK)):
        if "-train" in owner:
            assert {"key": cluster.POOL_LABEL, "operator": "Equal", "value": "training",
                    "effect": "NoSchedule"} in pod["tolerations"]


@pytest.mark.parametrize("stack", [STACK, "gcp-gke-long"])
def test_every_object_is_strict_valid_for_the_clusters_version(gke, stack: str) -> None:
    failures = strict_failures(gke(stack), gke_facts.KUBERNETES_VERSION)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("stack", [STACK, "gcp-gke-long"])
def test_no_policy_violation_at_all(gke, stack: str) -> None:
    assert violations(gke(stack), load_stack(stack, project_dir=gke.project).spec) == []


def test_names_fit_gkes_limits_for_the_longest_spec(gke) -> None:
    capture = gke("gcp-gke-long")
    (cluster_resource,) = of_type(capture, GKE)
    assert len(cluster_resource.inputs["name"]) <= LIMITS["cluster"] == 40
    assert all(len(p.inputs["name"]) <= LIMITS["node_pool"] for p in of_type(capture, POOL))
    accounts = of_type(capture, "gcp:serviceaccount/account:Account")
    assert accounts and all(len(a.inputs["accountId"]) <= LIMITS["service_account"] for a in accounts)
