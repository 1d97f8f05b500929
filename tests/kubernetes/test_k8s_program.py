"""The Kubernetes program under the mock runtime: the objects each stack declares and their properties."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest
from k8s_helpers import (
    containers,
    copy_project,
    kube_objects,
    manifest,
    named,
    of_kind,
    pod_specs,
    resource,
    run_capture,
)

from infra.packaging import build_wheel
from infra.stackfile import load_stack
from infra.targets.kubernetes import layout
from infra.targets.kubernetes.sizes import SIZES
from pipelines.config import from_dict
from pipelines.triggers import parse_trigger

COMPONENTS = {"shipyard:index:TrainingCluster", "shipyard:index:ModelRegistry", "shipyard:index:ServingEndpoint",
              "shipyard:index:Monitoring"}
APP_LABELS = {f"app.kubernetes.io/{k}" for k in ("name", "instance", "component", "part-of", "managed-by", "version")}
#: Fields whose keys are user data (label names, file names, env-free maps), not schema property names.
MAP_FIELDS = {"labels", "annotations", "data", "binaryData", "stringData", "matchLabels", "selector", "requests",
              "limits", "nodeSelector"}
STACKS = ["k8s-dev", "k8s-prod", "k8s-edge", "k8s-refs"]


def spec_of(project, stack: str):
    return load_stack(stack, project_dir=project).spec


def pipelines_pods(capture) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [p for p in pod_specs(capture) if any(c["name"] == "install-pipelines" for c in containers(p[2]))]


def secret_files(pod: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Every file a pod's containers read from a Secret: path -> (Secret, key)."""
    volumes = {v["name"]: v["secret"] for v in pod.get("volumes", []) if "secret" in v}
    return {f"{m['mountPath']}/{item['path']}": (volumes[m["name"]]["secretName"], item["key"])
            for c in containers(pod) for m in c.get("volumeMounts", []) if m["name"] in volumes
            for item in volumes[m["name"]]["items"]}


def exported_from_files(container: dict[str, Any]) -> dict[str, str]:
    """Variables the container's start-up shell exports from files (`workload.env_from_files`): name -> path."""
    if container["command"][:2] != ["/bin/sh", "-c"]:
        return {}
    return dict(re.findall(r'^(\w+)="\$\(cat ([^)]+)\)"; export \1$', container["command"][2], re.MULTILINE))


# ------------------------------------------------------------------------------------------------ structure


@pytest.mark.parametrize("stack", STACKS)
def test_components_own_every_resource(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    components = {r.urn: r.type for r in capture.resources if r.type.startswith("shipyard:")}
    platform = next(urn for urn, t in components.items() if t == "shipyard:index:Platform")
    counts = {t: list(components.values()).count(t) for t in COMPONENTS}
    assert counts == {"shipyard:index:TrainingCluster": 1, "shipyard:index:ModelRegistry": 1,
                      "shipyard:index:ServingEndpoint": len(spec.models), "shipyard:index:Monitoring": len(spec.models)}
    at_platform = set()
    for r in capture.resources:
        if r.type.startswith("shipyard:"):
            continue
        assert r.parent in components, f"{r.type} {r.name} has parent {r.parent}"
        if r.parent == platform:
            at_platform.add((r.type.rsplit(":", 1)[1], r.name))
    pull = spec.k8s.image_pull_secret
    image_pull = {("Secret", "image-pull")} if pull is not None and pull.secure is not None else set()
    assert at_platform == {("Namespace", "namespace"), ("NetworkPolicy", "default-deny"),
                           ("NetworkPolicy", "allow-dns"), ("PersistentVolumeClaim", "data"), *image_pull}


#: The only cluster-scoped objects a stack declares; each carries the namespace in its name.
CLUSTER_SCOPED = {"Namespace", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


@pytest.mark.parametrize("stack", STACKS)
def test_everything_is_labelled_and_in_the_namespace(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    namespace = spec.k8s.namespace or spec.prefix
    for r in kube_objects(capture, include_custom=True):
        body = manifest(r)
        assert set(body["metadata"]["labels"]) >= APP_LABELS, f"{r.type} {r.name}"
        assert body["metadata"]["labels"]["app.kubernetes.io/part-of"] == spec.name
        if body["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in body["metadata"] and namespace in body["metadata"]["name"], r.name
        else:
            assert body["metadata"]["namespace"] == namespace, f"{r.type} {r.name}"
    for owner, meta, _ in pod_specs(capture):
        assert set(meta["labels"]) >= APP_LABELS, owner


@pytest.mark.parametrize("stack", STACKS)
def test_no_untranslated_snake_case_key(captured, stack: str) -> None:
    def walk(node: Any, path: str) -> list[str]:
        if isinstance(node, list):
            return [bad for i, item in enumerate(node) for bad in walk(item, f"{path}[{i}]")]
        if not isinstance(node, dict):
            return []
        found = []
        for key, value in node.items():
            if "_" in key:
                found.append(f"{path}.{key}")
            if key not in MAP_FIELDS:
                found += walk(value, f"{path}.{key}")
        return found

    bad = [f"{r.type} {r.name}: {p}" for r in kube_objects(captured(stack), include_custom=True)
           for p in walk(r.inputs, "")]
    assert not bad, bad


def test_outputs_follow_the_contract(captured, project) -> None:
    capture, spec = captured("k8s-prod"), spec_of(project, "k8s-prod")
    outputs = capture.outputs
    namespace = "shipyard-prod"
    assert outputs["training_cluster"] == namespace == outputs["namespace"]
    assert re.fullmatch(rf"configmap://{namespace}/pipelines-[0-9a-f]{{12}}", outputs["pipeline_package_uri"])
    assert outputs["tracking_uri"] == f"http://mlflow.{namespace}.svc.cluster.local:5000"
    assert outputs["endpoints"] == {m.name: f"http://{m.name}-serving.{namespace}.svc.cluster.local:8080"
                                    for m in spec.models}
    for model in spec.models:
        named(capture, "Service", f"{model.name}-serving")


# ------------------------------------------------------------------------------------------------ pods


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_is_non_root_and_locked_down(captured, stack: str) -> None:
    for owner, _, pod in pod_specs(captured(stack)):
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == layout.RUNTIME_UID, owner
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, owner
        assert pod["serviceAccountName"], owner
        for container in containers(pod):
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}, owner
            assert ctx["readOnlyRootFilesystem"] is True and ctx["runAsNonRoot"] is True, owner
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests), owner


@pytest.mark.parametrize("stack", STACKS)
def test_only_monitors_that_retrain_get_an_api_token(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    retraining = {layout.drift_cronjob(m.name) for m in spec.models if m.monitoring.retrain_on_drift}
    with_token = {owner.split("/")[1] for owner, _, pod in pod_specs(capture) if pod["automountServiceAccountToken"]}
    assert with_token == retraining
    accounts = {a["metadata"]["name"] for a in of_kind(capture, "ServiceAccount") if a["automountServiceAccountToken"]}
    assert accounts == retraining


@pytest.mark.parametrize("stack", STACKS)
def test_long_running_containers_have_probes(captured, stack: str) -> None:
    capture = captured(stack)
    for owner, _, pod in pod_specs(capture):
        if owner.startswith(("Deployment/", "StatefulSet/")):
            for container in pod["containers"]:
                assert container.get("readinessProbe") and container.get("livenessProbe"), owner
    for body in of_kind(capture, "Deployment"):
        if body["metadata"]["labels"]["app.kubernetes.io/name"] in ("serving", "mlflow"):
            (container,) = body["spec"]["template"]["spec"]["containers"]
            expected = "/ping" if body["metadata"]["labels"]["app.kubernetes.io/name"] == "serving" else "/health"
            assert container["readinessProbe"]["httpGet"]["path"] == expected
            assert container["livenessProbe"]["httpGet"]["path"] == "/health"


# ------------------------------------------------------------------------------------------------ the wheel


def test_the_wheel_configmap_is_immutable_named_by_the_content_hash_and_carries_the_wheel(captured, project) -> None:
    capture = captured("k8s-dev")
    package = build_wheel(project)
    (wheel,) = [c for c in of_kind(capture, "ConfigMap") if c["metadata"]["name"].startswith("pipelines-")]
    assert wheel["immutable"] is True
    assert wheel["metadata"]["name"] == f"pipelines-{package.content_hash[:12]}"
    payload = base64.b64decode(wheel["binaryData"][layout.WHEEL_KEY])
    assert hashlib.sha256(payload).hexdigest() == package.sha256
    for owner, _, pod in pipelines_pods(capture):
        volume = next(v for v in pod["volumes"] if v["name"] == "wheel")
        assert volume["configMap"]["name"] == wheel["metadata"]["name"], owner
        install = next(c for c in pod["initContainers"] if c["name"] == "install-pipelines")
        assert install["command"][-1] == f"{layout.WHEEL_DIR}/{package.filename}", owner
        assert {"--no-deps", "--no-index", "--target"} <= set(install["command"])


def test_an_unchanged_tree_gives_the_same_objects(captured, project) -> None:
    first, again = captured("k8s-dev"), run_capture(project, "k8s-dev")
    assert {r.urn: r.inputs for r in first.resources} == {r.urn: r.inputs for r in again.resources}
    assert not build_wheel(project).rebuilt


def test_changed_code_changes_only_what_runs_it(captured, project, tmp_path) -> None:
    before = captured("k8s-dev")
    changed = copy_project(tmp_path / "changed")
    init = changed / "pipelines" / "__init__.py"
    init.write_text(init.read_text() + "\n# a change\n")
    after = run_capture(changed, "k8s-dev")
    old, new = ({r.urn: r.inputs for r in c.resources} for c in (before, after))
    assert old.keys() == new.keys()
    wheel_urn = next(u for u in old if u.endswith("::pipelines-wheel"))
    assert old[wheel_urn]["metadata"]["name"] != new[wheel_urn]["metadata"]["name"]
    shared = ("namespace", "default-deny", "allow-dns", "data")
    registry_and_platform = [r.urn for r in before.resources if "ModelRegistry" in r.urn or r.name in shared]
    assert registry_and_platform and all(old[u] == new[u] for u in registry_and_platform)
    jobs = [u for u in old if "::churn-train-initial" in u]
    assert old[jobs[0]]["metadata"]["name"] != new[jobs[0]]["metadata"]["name"]


@pytest.mark.parametrize("stack", ["k8s-dev", "k8s-prod"])
def test_run_configurations_are_immutable_and_valid_for_the_pipelines(captured, stack: str) -> None:
    capture = captured(stack)
    cronjobs = {c["metadata"]["name"] for c in of_kind(capture, "CronJob")}
    configs = [c for c in of_kind(capture, "ConfigMap") if "-config-" in c["metadata"]["name"]]
    assert len(configs) == len(capture.outputs["endpoints"])
    for body in configs:
        assert body["immutable"] is True
        ((filename, text),) = body["data"].items()
        config = from_dict(json.loads(text))
        assert body["metadata"]["name"] == layout.config_configmap(filename.removesuffix(".json"), text)
        assert config.tracking_uri == capture.outputs["tracking_uri"]
        trigger = parse_trigger(config.retrain)
        if trigger is not None:
            namespace, cronjob = trigger[1].split("/")
            assert namespace == capture.outputs["namespace"] and cronjob in cronjobs


# ------------------------------------------------------------------------------------------------ training


@pytest.mark.parametrize("stack", ["k8s-dev", "k8s-prod"])
def test_training_runs_on_the_schedule_bounded_in_time(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    for model in spec.models:
        cron = named(capture, "CronJob", layout.train_cronjob(model.name))["spec"]
        assert cron["schedule"] == spec.training.schedule and cron["concurrencyPolicy"] == "Forbid"
        job = cron["jobTemplate"]["spec"]
        assert job["activeDeadlineSeconds"] == spec.training.time_limit_minutes * 60
        assert job["backoffLimit"] >= 1 and job["ttlSecondsAfterFinished"] > 0
        command = job["template"]["spec"]["containers"][0]["command"]
        assert command == ["python", "-m", "pipelines", "run", "--config", f"/etc/shipyard/{model.name}.json"]
        (initial,) = [j for j in of_kind(capture, "Job")
                      if j["metadata"]["name"].startswith(f"{layout.train_cronjob(model.name)}-init-")]
        assert initial["spec"]["template"]["spec"]["containers"][0]["command"] == command


def test_serving_waits_for_the_initial_training(captured) -> None:
    capture = captured("k8s-prod")
    for model in ("churn", "demand"):
        job = resource(capture, ":Job", f"{model}-train-initial")
        assert job.urn in resource(capture, ":Deployment", f"{model}-serving").dependencies


def test_gpu_spot_training_requests_gpus_and_prefers_spot(captured) -> None:
    capture = captured("k8s-edge")
    pod = named(capture, "CronJob", "churn-train")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    prod = named(captured("k8s-prod"), "CronJob", "churn-train")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "affinity" not in prod and "tolerations" not in prod  # prod: on-demand capacity, no GPUs


def test_only_training_requests_gpus(captured) -> None:
    capture = captured("k8s-edge")  # training, MLflow and the endpoint all at size class `gpu`
    workloads = [obj for kind in ("Deployment", "StatefulSet", "CronJob", "Job") for obj in of_kind(capture, kind)]
    requesting = {obj["metadata"]["labels"]["app.kubernetes.io/component"] for obj in workloads
                  if "nvidia.com/gpu" in json.dumps(obj["spec"])}
    assert requesting == {"training"}
    for name in ("mlflow", "churn-serving"):
        limits = named(capture, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert "nvidia.com/gpu" not in limits and limits["cpu"] == SIZES["large"].cpu_limit


# ------------------------------------------------------------------------------------------------ serving


@pytest.mark.parametrize("stack", ["k8s-dev", "k8s-prod", "k8s-edge"])
def test_endpoints_autoscale_within_bounds_and_keep_capacity(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    for model in spec.models:
        name = layout.serving_name(model.name)
        deployment = named(capture, "Deployment", name)["spec"]
        assert "replicas" not in deployment
        assert deployment["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
        hpa = named(capture, "HorizontalPodAutoscaler", name)["spec"]
        assert hpa["minReplicas"] == max(1, model.serving.min_replicas)
        assert hpa["maxReplicas"] == model.serving.max_replicas
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == model.serving.target_cpu_utilization
        pdb = named(capture, "PodDisruptionBudget", name)["spec"]
        # A drain takes one pod at a time, even at the autoscaler's floor (minAvailable would block it there).
        assert pdb["maxUnavailable"] == 1 and "minAvailable" not in pdb
        assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        assert pdb["selector"]["matchLabels"] == deployment["selector"]["matchLabels"]
        annotations = deployment["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
        (container,) = deployment["template"]["spec"]["containers"]
        assert container["command"][3:6] == ["serve", "--config", f"/etc/shipyard/{model.name}.json"]
        keys = [e for e in container["env"] if e["name"].startswith("SHIPYARD_API_KEY")]
        volumes = {v["name"]: v for v in deployment["template"]["spec"]["volumes"]}
        if model.serving.auth == "api_key":
            (key,) = keys
            mount = next(m for m in container["volumeMounts"] if m["name"] == "api-key")
            assert key == {"name": "SHIPYARD_API_KEY_FILE", "value": f"{mount['mountPath']}/api-key"}
            assert mount["readOnly"] is True
            assert volumes["api-key"]["secret"] == {"secretName": layout.api_key_secret(model.name),
                                                    "defaultMode": 0o440, "items": [{"key": "api-key",
                                                                                    "path": "api-key"}]}
        else:
            assert not keys and "api-key" not in volumes


def test_only_public_endpoints_get_an_ingress_on_https_with_only_the_scoring_paths(captured) -> None:
    assert not of_kind(captured("k8s-prod"), "Ingress")
    (ingress,) = of_kind(captured("k8s-edge"), "Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"hosts": ["ml.example.com"], "secretName": "ml-example-com-tls"}]
    (rule,) = spec["rules"]
    assert rule["host"] == "ml.example.com"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": "churn-serving", "port": {"name": "http"}}
    assert path["path"] == "/churn/(invocations|ping)$"
    for private in ("health", "metrics", "-/reload", "-/flush"):
        assert not re.match(path["path"], f"/churn/{private}")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/rewrite-target"] == "/$1"
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/whitelist-source-range"] == "10.0.0.0/8"


# ------------------------------------------------------------------------------------------------ network


@pytest.mark.parametrize("stack", STACKS)
def test_the_namespace_denies_by_default_and_every_pod_has_its_own_policy(captured, stack: str) -> None:
    capture = captured(stack)
    policies = of_kind(capture, "NetworkPolicy")
    deny = named(capture, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    own = [p["spec"]["podSelector"].get("matchLabels", {}) for p in policies if p["spec"]["podSelector"]]
    for owner, meta, _ in pod_specs(capture):
        assert any(sel.items() <= meta["labels"].items() for sel in own), f"{owner} has no policy of its own"


def test_postgres_admits_only_mlflow(captured) -> None:
    capture = captured("k8s-dev")
    policy = named(capture, "NetworkPolicy", "postgresql")["spec"]
    (rule,) = policy["ingress"]
    mlflow = named(capture, "Deployment", "mlflow")["spec"]["selector"]["matchLabels"]
    assert rule["from"] == [{"podSelector": {"matchLabels": mlflow}}]
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}] and "egress" not in policy


# ------------------------------------------------------------------------------------------------ rbac and secrets


@pytest.mark.parametrize("stack", ["k8s-dev", "k8s-prod"])
def test_monitor_roles_allow_exactly_creating_jobs_and_getting_their_cronjob(captured, project, stack: str) -> None:
    capture, spec = captured(stack), spec_of(project, stack)
    roles = {r["metadata"]["name"]: r for r in of_kind(capture, "Role")}
    assert set(roles) == {layout.drift_cronjob(m.name) for m in spec.models if m.monitoring.retrain_on_drift}
    assert not of_kind(capture, "ClusterRole") and not of_kind(capture, "ClusterRoleBinding")
    for name, role in roles.items():
        model = name.removesuffix("-drift")
        assert role["rules"] == [
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
            {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get"],
             "resourceNames": [layout.train_cronjob(model)]},
        ]
        binding = named(capture, "RoleBinding", name)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name,
                                        "namespace": capture.outputs["namespace"]}]


@pytest.mark.parametrize("stack", STACKS)
def test_secret_values_never_appear_in_plaintext(captured, stack: str) -> None:
    capture = captured(stack)
    for body in of_kind(capture, "Secret"):
        raw = next(r for r in kube_objects(capture) if r.type.endswith(":Secret")
                   and r.inputs["metadata"]["name"] == body["metadata"]["name"])
        assert raw.inputs["stringData"] == "[secret]" and "data" not in raw.inputs
    text = json.dumps([r.inputs for r in capture.resources]) + json.dumps(capture.outputs)
    assert "mock-" not in text  # the mocked RandomPassword results
    assert "postgresql+psycopg2://" not in text


def test_external_database_and_s3_from_pulumi_secrets(captured) -> None:
    capture = captured("k8s-edge")
    assert not of_kind(capture, "StatefulSet")
    pod = named(capture, "Deployment", "mlflow")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://minio.storage.svc.k8s.example.internal:9000"
    assert secret_files(pod) == {
        f"{layout.SECRETS_DIR}/backend-store/uri": (layout.BACKEND_SECRET, "uri"),
        f"{layout.SECRETS_DIR}/s3-credentials/AWS_ACCESS_KEY_ID": (layout.S3_SECRET, "AWS_ACCESS_KEY_ID"),
        f"{layout.SECRETS_DIR}/s3-credentials/AWS_SECRET_ACCESS_KEY": (layout.S3_SECRET, "AWS_SECRET_ACCESS_KEY")}
    assert exported_from_files(container) == {
        "MLFLOW_BACKEND_STORE_URI": f"{layout.SECRETS_DIR}/backend-store/uri",
        "AWS_ACCESS_KEY_ID": f"{layout.SECRETS_DIR}/s3-credentials/AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY": f"{layout.SECRETS_DIR}/s3-credentials/AWS_SECRET_ACCESS_KEY"}
    assert "s3://mlflow/artifacts" in container["command"]
    assert {s["metadata"]["name"] for s in of_kind(capture, "Secret")} >= {layout.BACKEND_SECRET, layout.S3_SECRET}
    egress = named(capture, "NetworkPolicy", "mlflow")["spec"]["egress"]
    assert [rule["ports"][0]["port"] for rule in egress] == [5432, 9000]
    assert capture.outputs["monitoring_dashboard_url"] == "https://grafana.example.com/d/shipyard"


def test_external_database_and_s3_by_reference_create_no_secret(captured) -> None:
    capture = captured("k8s-refs")
    assert not of_kind(capture, "Secret") and not of_kind(capture, "StatefulSet")
    pod = named(capture, "Deployment", "mlflow")["spec"]["template"]["spec"]
    assert secret_files(pod) == {
        f"{layout.SECRETS_DIR}/backend-store/uri": ("pg-credentials", "uri"),
        f"{layout.SECRETS_DIR}/s3-credentials/AWS_ACCESS_KEY_ID": ("s3-credentials", "AWS_ACCESS_KEY_ID"),
        f"{layout.SECRETS_DIR}/s3-credentials/AWS_SECRET_ACCESS_KEY": ("s3-credentials", "AWS_SECRET_ACCESS_KEY")}
    assert set(exported_from_files(pod["containers"][0])) == {"MLFLOW_BACKEND_STORE_URI", "AWS_ACCESS_KEY_ID",
                                                              "AWS_SECRET_ACCESS_KEY"}


def checkov_ckv_k8s_35(body: dict[str, Any]) -> list[str]:
    """Checkov's CKV_K8S_35 ("Prefer using secrets as files over secrets as environment variables") on one
    manifest: every container (and init container) of its pod templates fails when an `env` entry reads
    `valueFrom.secretKeyRef` or an `envFrom` entry is a `secretRef`."""
    found = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key in ("containers", "initContainers"):
                for i, container in enumerate(node.get(key) or []):
                    where = f"{path}.{key}[{i}]"
                    found.extend(f"{where}.env.{e['name']}" for e in container.get("env") or []
                                 if "secretKeyRef" in (e.get("valueFrom") or {}))
                    found.extend(f"{where}.envFrom" for e in container.get("envFrom") or [] if "secretRef" in e)
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(body, f"{body['kind']}/{body['metadata']['name']}")
    return found


def test_the_ckv_k8s_35_check_catches_a_secret_in_env_or_env_from() -> None:
    container = {"name": "c", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                                      {"name": "B", "value": "plain"}],
                 "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "s"}}]}
    body = {"kind": "CronJob", "metadata": {"name": "x"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [container],
                                                                    "containers": []}}}}}}
    assert checkov_ckv_k8s_35(body) == [
        "CronJob/x.spec.jobTemplate.spec.template.spec.initContainers[0].env.A",
        "CronJob/x.spec.jobTemplate.spec.template.spec.initContainers[0].envFrom"]


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_reaches_an_environment_variable(captured, stack: str) -> None:
    capture = captured(stack)
    found = [f for r in kube_objects(capture) for f in checkov_ckv_k8s_35(manifest(r))]
    assert not found, found
    secrets = {s["metadata"]["name"] for s in of_kind(capture, "Secret")}
    mounted = {secret for _, _, pod in pod_specs(capture) for secret, _ in secret_files(pod).values()}
    pulled_with = {s["name"] for _, _, pod in pod_specs(capture) for s in pod.get("imagePullSecrets", [])}
    assert secrets <= mounted | pulled_with  # every Secret the stack creates is read: as files, or by the kubelet


def test_postgres_and_mlflow_read_the_database_secret_from_files(captured) -> None:
    capture = captured("k8s-dev")
    pg = named(capture, "StatefulSet", "postgresql")["spec"]["template"]["spec"]
    (container,) = pg["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert "POSTGRES_PASSWORD" not in env
    assert secret_files(pg) == {env["POSTGRES_PASSWORD_FILE"]: (layout.BACKEND_SECRET, "password")}
    mlflow = named(capture, "Deployment", "mlflow")["spec"]["template"]["spec"]
    (container,) = mlflow["containers"]
    assert secret_files(mlflow) == {f"{layout.SECRETS_DIR}/backend-store/uri": (layout.BACKEND_SECRET, "uri")}
    assert exported_from_files(container) == {"MLFLOW_BACKEND_STORE_URI": f"{layout.SECRETS_DIR}/backend-store/uri"}
    assert container["command"][3:6] == ["mlflow", "mlflow", "server"]  # $0, then the server's own argv


# ------------------------------------------------------------------------------------------------ placement


def data_pods(capture) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """The pods mounting the shared data claim."""
    return [p for p in pod_specs(capture)
            if any(v.get("persistentVolumeClaim", {}).get("claimName") == layout.DATA_CLAIM
                   for v in p[2].get("volumes", []))]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels, `In` expressions) selects `labels`."""
    return (selector.get("matchLabels", {}).items() <= labels.items()
            and all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", [])))


@pytest.mark.parametrize("stack", ["k8s-dev", "k8s-prod"])
def test_without_a_shared_class_the_data_volume_is_read_write_once_and_its_pods_share_its_node(
        captured, stack: str) -> None:
    capture = captured(stack)
    claim = named(capture, "PersistentVolumeClaim", layout.DATA_CLAIM)["spec"]
    if stack == "k8s-prod":  # names a ReadWriteMany class
        assert claim["accessModes"] == ["ReadWriteMany"] and claim["storageClassName"] == "standard-rwx"
        assert all("podAffinity" not in pod.get("affinity", {}) for _, _, pod in data_pods(capture))
        return
    assert claim["accessModes"] == ["ReadWriteOnce"] and "storageClassName" not in claim  # the cluster default
    pods = data_pods(capture)
    owners = {owner.split("/")[0] for owner, _, _ in pods}
    assert owners == {"Deployment", "CronJob"} and len(pods) == 3  # serving, drift metrics, drift CronJob
    for owner, meta, pod in pods:
        (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname", owner
        # Each such pod matches the term: the first goes anywhere, the others follow it to the volume's node.
        assert selects(term["labelSelector"], meta["labels"]), owner
        assert "topologySpreadConstraints" not in pod, owner
    others = [meta for owner, meta, pod in pod_specs(capture) if (owner, meta, pod) not in pods]
    term = pods[0][2]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert not any(selects(term["labelSelector"], meta["labels"]) for meta in others)  # training, mlflow, db


@pytest.mark.parametrize("stack", ["k8s-prod", "k8s-edge"])
def test_serving_replicas_spread_over_nodes_and_zones_but_still_schedule_on_one_node(captured, stack: str) -> None:
    capture = captured(stack)
    for body in of_kind(capture, "Deployment"):
        if body["metadata"]["labels"]["app.kubernetes.io/component"] != "serving":
            continue
        template = body["spec"]["template"]
        constraints = template["spec"]["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in constraints] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        for constraint in constraints:
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway" and constraint["maxSkew"] == 1
            assert constraint["labelSelector"]["matchLabels"] == body["spec"]["selector"]["matchLabels"]
            assert selects(constraint["labelSelector"], template["metadata"]["labels"])
    assert all("topologySpreadConstraints" not in pod for _, _, pod in pod_specs(captured("k8s-dev")))


def test_the_cluster_domain_is_configurable(captured) -> None:
    edge = captured("k8s-edge")
    assert edge.outputs["tracking_uri"] == "http://mlflow.ml-edge.svc.k8s.example.internal:5000"
    assert edge.outputs["endpoints"] == {"churn": "http://churn-serving.ml-edge.svc.k8s.example.internal:8080"}
    text = json.dumps([r.inputs for r in edge.resources]) + json.dumps(edge.outputs)
    assert "cluster.local" not in text and "mlflow.ml-edge.svc.k8s.example.internal" in text
    (config,) = [c for c in of_kind(edge, "ConfigMap") if "-config-" in c["metadata"]["name"]]
    assert from_dict(json.loads(next(iter(config["data"].values())))).tracking_uri == edge.outputs["tracking_uri"]


# ------------------------------------------------------------------------------------------------ state


def test_prod_state_is_protected_and_retained(captured) -> None:
    capture = captured("k8s-prod")
    for type_suffix, name in [(":StatefulSet", "postgresql"), (":PersistentVolumeClaim", "mlflow-artifacts"),
                              (":PersistentVolumeClaim", "data"), (":Secret", "mlflow-backend-store"),
                              (":RandomPassword", "postgresql-password"), (":Namespace", "namespace")]:
        found = resource(capture, type_suffix, name)
        assert found.protect and found.retain_on_delete, name
    statefulset = named(capture, "StatefulSet", "postgresql")["spec"]
    (template,) = statefulset["volumeClaimTemplates"]
    assert template["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert template["spec"]["storageClassName"] == "standard"
    assert statefulset["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}


def test_prod_images_are_pinned_by_digest(captured) -> None:
    for owner, _, pod in pod_specs(captured("k8s-prod")):
        for container in containers(pod):
            assert re.search(r"@sha256:[0-9a-f]{64}$", container["image"]), f"{owner}: {container['image']}"


def test_dev_state_is_not_protected(captured) -> None:
    assert not any(r.protect or r.retain_on_delete for r in captured("k8s-dev").resources)


# ------------------------------------------------------------------------------------------------ monitoring


def test_monitoring_runs_the_drift_job_and_prometheus_objects_only_with_the_operator(captured, project) -> None:
    prod, spec = captured("k8s-prod"), spec_of(project, "k8s-prod")
    for model in spec.models:
        cron = named(prod, "CronJob", layout.drift_cronjob(model.name))["spec"]
        assert cron["schedule"] == model.monitoring.schedule and cron["concurrencyPolicy"] == "Forbid"
        assert cron["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][3] == "monitor"
        monitor = named(prod, "ServiceMonitor", layout.drift_cronjob(model.name))["spec"]
        assert {e["port"] for e in monitor["endpoints"]} == {"http", "metrics"}
        rules = named(prod, "PrometheusRule", layout.drift_cronjob(model.name))["spec"]["groups"][0]["rules"]
        assert any(r["alert"] == "ShipyardCovariateShift" for r in rules)
    dev = captured("k8s-dev")
    assert not of_kind(dev, "ServiceMonitor") and not of_kind(dev, "PrometheusRule")
    assert named(dev, "Deployment", layout.metrics_name("churn"))
