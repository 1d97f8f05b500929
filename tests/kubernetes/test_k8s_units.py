"""Pure decisions of the Kubernetes target, tested without any Pulumi runtime."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.merge import with_defaults
from infra.packaging import PipelinePackage
from infra.spec import PlatformSpec
from infra.targets.kubernetes import layout, network, rbac
from infra.targets.kubernetes.labels import Workload, label_value
from infra.targets.kubernetes.monitoring import alert_rules, dashboard_url
from infra.targets.kubernetes.registry import (
    allowed_hosts,
    artifact_uri,
    mlflow_command,
    mlflow_replicas,
    postgres_uri,
)
from infra.targets.kubernetes.rules import check, ignored, parse_secret_ref
from infra.targets.kubernetes.serving import ingress_rule, replica_bounds
from infra.targets.kubernetes.sizes import GPU_RESOURCE, SIZES, cpu_only, resource_values
from infra.targets.kubernetes.training import run_config, wheel_payload
from infra.targets.kubernetes.workload import (
    SPOT_NODE_LABELS,
    SPOT_TAINTS,
    SecretFiles,
    data_pod_affinity,
    env_from_files,
    scheduling,
    spread,
)
from pipelines.config import from_dict
from pipelines.triggers import parse_trigger


def make_spec(**overrides: Any) -> PlatformSpec:
    """A valid Kubernetes spec with one model and a pinned runtime image, plus `overrides`."""
    data: dict[str, Any] = {"target": "kubernetes", "models": [{"name": "churn"}],
                            "runtime_image": "ghcr.io/acme/runtime@sha256:" + "0" * 64, **overrides}
    return PlatformSpec.model_validate(data)


def s3_spec(**overrides: Any) -> PlatformSpec:
    """A spec whose artifacts live on an S3 endpoint."""
    artifacts = {"s3_endpoint": "https://s3.example.com", "bucket": "ml"}
    return make_spec(registry={"artifacts": artifacts}, **overrides)


# ------------------------------------------------------------------------------------------------ sizes


def test_every_size_class_has_requests_within_limits() -> None:
    for name, size in SIZES.items():
        requests, limits = resource_values(size)
        assert set(requests) == set(limits), name
        assert requests["memory"] and limits["memory"] and requests["cpu"] and limits["cpu"]


def test_gpu_class_requests_gpus_and_the_count_overrides_it() -> None:
    requests, limits = resource_values(SIZES["gpu"])
    assert requests[GPU_RESOURCE] == limits[GPU_RESOURCE] == "1"
    assert resource_values(SIZES["gpu"], gpus=4)[1][GPU_RESOURCE] == "4"
    assert GPU_RESOURCE not in resource_values(SIZES["medium"], gpus=0)[1]


def test_cpu_only_services_read_the_gpu_class_as_large_and_never_request_gpus() -> None:
    assert cpu_only("gpu") == SIZES["large"]
    for name in SIZES:
        requests, limits = resource_values(cpu_only(name))
        assert GPU_RESOURCE not in requests and GPU_RESOURCE not in limits
        assert name == "gpu" or cpu_only(name) == SIZES[name]


# ------------------------------------------------------------------------------------------------ labels


def test_label_values_are_sanitized_and_long_ones_stay_distinct() -> None:
    assert label_value("0.1.0+abc123") == "0.1.0-abc123"
    a, b = label_value("x" * 70 + "a"), label_value("x" * 70 + "b")
    assert len(a) <= 63 and len(b) <= 63 and a != b


def test_selector_is_a_stable_subset_of_the_labels() -> None:
    one = Workload("serving", "shipyard-dev-churn", "serving", "shipyard", "0.1.0+aaa")
    two = Workload("serving", "shipyard-dev-churn", "serving", "shipyard", "0.1.0+bbb")
    assert one.selector == two.selector and one.labels != two.labels
    assert one.selector.items() <= one.labels.items()
    assert {k.split("/")[1] for k in one.labels} == {"name", "instance", "component", "part-of", "managed-by",
                                                     "version"}


# ------------------------------------------------------------------------------------------------ network


def test_default_deny_selects_every_pod_and_allows_nothing() -> None:
    policy = network.default_deny()
    assert policy.selector == () and policy.ingress == () and policy.egress == ()
    assert set(policy.types) == {"Ingress", "Egress"}


def test_dns_is_the_only_namespace_wide_egress() -> None:
    (rule,) = network.allow_dns().egress
    assert rule.peers == (network.Peer(pods=(("k8s-app", "kube-dns"),), namespace="kube-system"),)
    assert set(rule.ports) == {(53, "UDP"), (53, "TCP")}


def test_postgres_is_reached_by_mlflow_only_and_calls_nothing() -> None:
    mlflow = network.pods({"app.kubernetes.io/name": "mlflow"})
    policy = network.postgres_policy({"app.kubernetes.io/name": "postgresql"}, mlflow)
    assert [r.peers for r in policy.ingress] == [(mlflow,)]
    assert policy.ingress[0].ports == ((5432, "TCP"),) and policy.egress == ()


def test_mlflow_egress_names_its_database_or_only_its_port_for_an_external_one() -> None:
    clients = network.Peer(names=layout.MLFLOW_CLIENTS)
    db = network.pods({"app.kubernetes.io/name": "postgresql"})
    builtin = network.mlflow_policy({"n": "m"}, clients, db, None)
    assert [(r.peers, r.ports) for r in builtin.egress] == [((db,), ((5432, "TCP"),))]
    external = network.mlflow_policy({"n": "m"}, clients, None, "http://minio.storage:9000")
    assert [(r.peers, r.ports) for r in external.egress] == [((), ((5432, "TCP"),)), ((), ((9000, "TCP"),))]
    assert builtin.ingress[0].peers == (clients,) and builtin.ingress[0].ports == ((5000, "TCP"),)


def test_s3_port_comes_from_the_url() -> None:
    assert network.s3_port("https://s3.example.com") == 443
    assert network.s3_port("http://minio:9000") == 9000
    with pytest.raises(ValueError, match="s3_endpoint"):
        network.s3_port("minio:9000")


def test_api_server_egress_only_for_a_monitor_that_retrains() -> None:
    mlflow = network.pods({"app.kubernetes.io/name": "mlflow"})
    quiet = network.monitor_policy("m", {"a": "b"}, mlflow, retrains=False)
    loud = network.monitor_policy("m", {"a": "b"}, mlflow, retrains=True)
    assert [r.ports for r in quiet.egress] == [((5000, "TCP"),)]
    assert [r.ports for r in loud.egress] == [((5000, "TCP"),), ((443, "TCP"), (6443, "TCP"))]
    assert quiet.ingress == () == loud.ingress


def test_serving_admits_the_ingress_controller_only_when_public() -> None:
    mlflow = network.pods({"app.kubernetes.io/name": "mlflow"})
    private = network.serving_policy("s", {"a": "b"}, mlflow, None)
    public = network.serving_policy("s", {"a": "b"}, mlflow, "nginx")
    namespaces = {p.namespace for p in public.ingress[0].peers} - {p.namespace for p in private.ingress[0].peers}
    assert namespaces == {"ingress-nginx"}
    assert private.egress == (network.Rule((mlflow,), ((5000, "TCP"),)),)


def test_training_reaches_https_only_for_remote_datasets() -> None:
    assert network.is_remote("s3://b/k.csv") and not network.is_remote("demo://classification")
    mlflow = network.pods({"app.kubernetes.io/name": "mlflow"})
    assert len(network.training_policy("t", {}, mlflow, remote_data=False).egress) == 1
    assert network.training_policy("t", {}, mlflow, remote_data=True).egress[1].ports == ((443, "TCP"),)


# ------------------------------------------------------------------------------------------------ rbac


def test_monitor_may_get_its_cronjob_and_create_jobs_nothing_more() -> None:
    permissions = rbac.retrain_permissions("churn-train")
    assert {(p.api_group, p.resource, p.verbs, p.names) for p in permissions} == {
        ("batch", "jobs", ("create",), ()),
        ("batch", "cronjobs", ("get",), ("churn-train",)),
    }


# ------------------------------------------------------------------------------------------------ registry


def test_mlflow_runs_lean_with_the_spec_workers_and_proxied_artifacts() -> None:
    command = mlflow_command(make_spec(registry={"workers": 3}))
    assert command[:2] == ["mlflow", "server"]
    assert command[command.index("--workers") + 1] == "3"
    assert command[command.index("--artifacts-destination") + 1] == layout.ARTIFACTS_DIR
    assert "--serve-artifacts" in command
    s3 = mlflow_command(s3_spec())
    assert s3[s3.index("--artifacts-destination") + 1] == "s3://ml/artifacts"


def test_artifact_uri_and_replicas_follow_the_store() -> None:
    assert artifact_uri(make_spec(), "ns") == "pvc://ns/mlflow-artifacts"
    assert artifact_uri(s3_spec(), "ns") == "s3://ml/artifacts"
    assert mlflow_replicas(make_spec()) == 1
    assert mlflow_replicas(s3_spec(environment="prod")) == 2


def test_s3_endpoint_and_bucket_go_together() -> None:
    spec = make_spec(registry={"artifacts": {"s3_endpoint": "https://s3.example.com"}})
    assert [p.path for p in check(spec)] == ["registry.artifacts.bucket"]
    spec = make_spec(registry={"artifacts": {"bucket": "ml"}})
    assert [p.path for p in check(spec)] == ["registry.artifacts.s3_endpoint"]


def test_allowed_hosts_cover_the_service_names_with_ports() -> None:
    hosts = allowed_hosts("ml", "cluster.local").split(",")
    assert "mlflow.ml.svc.cluster.local:*" in hosts and "mlflow:*" in hosts and "localhost:*" in hosts
    assert "mlflow.ml.svc.k8s.example.org:*" in allowed_hosts("ml", "k8s.example.org").split(",")


def test_secret_refs_name_a_secret_and_a_key() -> None:
    spec = make_spec(registry={"database": {"external_url": {"ref": "pg/uri"}}})
    assert parse_secret_ref(spec.registry.database.external_url) == ("pg", "uri")
    bad = make_spec(registry={"database": {"external_url": {"ref": "no-key"}}})
    with pytest.raises(ValueError, match="name/key"):
        parse_secret_ref(bad.registry.database.external_url)
    assert [(p.path, "'<secret>/<key>'" in p.message) for p in check(bad)] == [
        ("registry.database.external_url.ref", True)]


def test_postgres_uri_uses_the_psycopg2_driver_and_the_service() -> None:
    assert postgres_uri("ml", "cluster.local", "pw") == (
        "postgresql+psycopg2://mlflow:pw@postgresql.ml.svc.cluster.local:5432/mlflow")
    assert "@postgresql.ml.svc.corp.internal:5432/" in postgres_uri("ml", "corp.internal", "pw")


# ------------------------------------------------------------------------------------------------ training


def test_run_config_is_what_the_pipelines_accept() -> None:
    spec = make_spec(kubernetes={"namespace": "ml"})
    document = json.loads(run_config(spec, spec.models[0], "ml"))
    config = from_dict(document)
    assert config.tracking_uri == "http://mlflow.ml.svc.cluster.local:5000"
    assert parse_trigger(config.retrain) == ("kubernetes-job", "ml/churn-train")
    assert config.inference_log_uri.startswith(layout.DATA_DIR)
    assert f"prometheus:{layout.metrics_dir('churn')}/{layout.METRICS_FILE}" in config.sinks


def test_run_config_without_retraining_says_none() -> None:
    spec = make_spec(models=[{"name": "churn", "monitoring": {"retrain_on_drift": False}}])
    assert json.loads(run_config(spec, spec.models[0], "ns"))["retrain"] == "none"


def test_a_wheel_too_big_for_a_configmap_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "big.whl"
    wheel.write_bytes(b"\0" * (layout.MAX_WHEEL_BYTES + 1))
    package = PipelinePackage(wheel, "0.1.0+x", "x" * 64, "y", (), True)
    with pytest.raises(ValueError, match="ConfigMap"):
        wheel_payload(package)


def test_initial_job_name_changes_with_what_it_runs_and_fits_a_label() -> None:
    model = "m" * 40
    first, second = layout.init_job(model, ["image:1", "cm-a"]), layout.init_job(model, ["image:1", "cm-b"])
    assert first != second and len(first) <= 63
    assert layout.init_job(model, ["image:1", "cm-a"]) == first
    assert len(layout.train_cronjob(model)) <= 52 and len(layout.drift_cronjob(model)) <= 52


def test_the_data_volume_is_read_write_many_only_on_a_shared_storage_class() -> None:
    assert layout.data_access_mode(make_spec()) == "ReadWriteOnce"
    assert layout.data_access_mode(make_spec(kubernetes={"storage_class": "gp3"})) == "ReadWriteOnce"
    assert layout.data_access_mode(make_spec(kubernetes={"shared_storage_class": "efs"})) == "ReadWriteMany"


def test_on_a_read_write_once_volume_its_pods_share_one_node() -> None:
    assert data_pod_affinity(make_spec(kubernetes={"shared_storage_class": "efs"})) is None
    affinity = data_pod_affinity(make_spec(name="ml"))
    (term,) = affinity.required_during_scheduling_ignored_during_execution
    assert term.topology_key == "kubernetes.io/hostname"
    assert term.label_selector.match_labels == {"app.kubernetes.io/part-of": "ml"}
    (expression,) = term.label_selector.match_expressions
    assert (expression.key, expression.operator, expression.values) == (
        "app.kubernetes.io/component", "In", ["serving", "monitoring"])


def test_replicas_spread_over_nodes_then_zones_as_a_preference() -> None:
    constraints = spread({"app.kubernetes.io/name": "serving"})
    assert [c.topology_key for c in constraints] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    for constraint in constraints:
        assert constraint.when_unsatisfiable == "ScheduleAnyway" and constraint.max_skew == 1
        assert constraint.label_selector.match_labels == {"app.kubernetes.io/name": "serving"}


def test_secret_files_mount_only_their_keys_readable_by_the_pod_group() -> None:
    files = SecretFiles("s3", "creds", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    assert files.path("AWS_ACCESS_KEY_ID") == f"{layout.SECRETS_DIR}/s3/AWS_ACCESS_KEY_ID"
    with pytest.raises(KeyError):
        files.path("token")
    volume = files.volume_args()
    assert volume.secret.secret_name == "creds" and volume.secret.default_mode == 0o440
    assert [item.key for item in volume.secret.items] == list(files.keys)
    assert files.mount_args().read_only is True and files.mount_args().mount_path == f"{layout.SECRETS_DIR}/s3"


def test_env_from_files_exports_each_file_then_runs_the_command(tmp_path: Path) -> None:
    (tmp_path / "uri").write_text("postgresql+psycopg2://u:p$w 'd@h/db\n")
    (tmp_path / "key").write_text("AKIA")
    command = env_from_files(["sh", "-c", 'printf "%s|%s|%s" "$URI" "$KEY" "$0"', "arg0"],
                             {"URI": str(tmp_path / "uri"), "KEY": str(tmp_path / "key")})
    assert command[:2] == ["/bin/sh", "-c"]
    assert "p$w" not in " ".join(command)  # values are read at start-up, never in the command
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert result.stdout == "postgresql+psycopg2://u:p$w 'd@h/db|AKIA|arg0"
    missing = env_from_files(["true"], {"URI": str(tmp_path / "absent")})
    assert subprocess.run(missing, capture_output=True, text=True).returncode != 0


def test_spot_is_a_preference_with_tolerations_and_gpus_are_tolerated() -> None:
    tolerations, affinity = scheduling(spot=True, gpus=0)
    assert {(t.key, t.value) for t in tolerations} == set(SPOT_TAINTS)
    terms = affinity.node_affinity.preferred_during_scheduling_ignored_during_execution
    assert {(t.preference.match_expressions[0].key, t.preference.match_expressions[0].values[0])
            for t in terms} == set(SPOT_NODE_LABELS)
    assert affinity.node_affinity.required_during_scheduling_ignored_during_execution is None
    tolerations, affinity = scheduling(spot=False, gpus=1)
    assert [t.key for t in tolerations] == [GPU_RESOURCE] and affinity is None
    assert scheduling(spot=False, gpus=0) == (None, None)


# ------------------------------------------------------------------------------------------------ serving


def test_replica_bounds_never_go_under_one() -> None:
    spec = make_spec(models=[{"name": "a", "serving": {"min_replicas": 2, "max_replicas": 5}},
                             {"name": "b", "serving": {"min_replicas": 0, "max_replicas": 2}}])
    assert replica_bounds(spec.models[0]) == (2, 5)
    assert replica_bounds(spec.models[1]) == (1, 2)


def nginx_location(path: str, uri: str) -> str | None:
    """What ingress-nginx sends upstream for `uri` with a regex `path` (a case-insensitive location anchored at
    the start) and the rewrite target: None when the location does not match."""
    _, _, annotations = ingress_rule("churn", [])
    match = re.match(path, uri, re.IGNORECASE)
    if match is None:
        return None
    return match.expand(annotations["nginx.ingress.kubernetes.io/rewrite-target"].replace("$", "\\"))


def test_ingress_routes_only_the_scoring_paths_with_the_prefix_stripped() -> None:
    path, path_type, annotations = ingress_rule("churn", ["10.0.0.0/8", "192.168.0.0/16"])
    assert path_type == "ImplementationSpecific" and annotations["nginx.ingress.kubernetes.io/use-regex"] == "true"
    assert nginx_location(path, "/churn/invocations") == "/invocations"
    assert nginx_location(path, "/churn/ping") == "/ping"
    for private in ("/churn/health", "/churn/metrics", "/churn/-/reload", "/churn/-/flush", "/churn/",
                    "/churn/invocations/extra", "/churn/invocationsx", "/other/invocations", "/health"):
        assert nginx_location(path, private) is None, private
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/whitelist-source-range"] == "10.0.0.0/8,192.168.0.0/16"
    assert "nginx.ingress.kubernetes.io/whitelist-source-range" not in ingress_rule("churn", [])[2]


def problems(spec: PlatformSpec) -> dict[str, str]:
    return {p.path: p.message for p in check(spec)}


#: The `kubernetes` keys a public endpoint needs.
PUBLIC = {"ingress_class": "nginx", "ingress_host": "ml.example.com", "ingress_tls_secret": "ml-tls"}


def test_unsupported_settings_are_refused_with_their_key() -> None:
    assert "'iam' is not available" in problems(make_spec(models=[{"name": "a", "serving": {"auth": "iam"}}]))[
        "models[0].serving.auth"]
    found = problems(make_spec(models=[{"name": "a", "serving": {"public": True, "auth": "api_key"}}]))
    assert found["models[0].serving.public"].startswith("needs kubernetes.ingress_class")


def test_every_problem_is_reported_at_once() -> None:
    spec = make_spec(models=[{"name": "a", "serving": {"auth": "iam"}},
                             {"name": "b", "serving": {"public": True, "auth": "none"}}],
                     registry={"artifacts": {"s3_endpoint": "https://s3.example.com"}})
    assert sorted(p.path for p in check(spec)) == [
        "kubernetes.ingress_host", "kubernetes.ingress_tls_secret",
        "models[0].serving.auth", "models[1].serving.public", "models[1].serving.public",
        "registry.artifacts.bucket"]


@pytest.mark.parametrize("ingress_class", ["traefik", "haproxy"])
def test_a_public_endpoint_needs_the_ingress_class_whose_rewrite_and_sources_are_set(ingress_class: str) -> None:
    spec = make_spec(kubernetes={**PUBLIC, "ingress_class": ingress_class},
                     networking={"allowed_cidrs": ["10.0.0.0/8"]},
                     models=[{"name": "a"}, {"name": "b", "serving": {"public": True, "auth": "api_key"}}])
    assert "allowed_cidrs" in problems(spec)["models[1].serving.public"]


def test_a_public_endpoint_is_never_open_to_anyone_without_authentication() -> None:
    open_spec = make_spec(kubernetes=PUBLIC, models=[{"name": "a", "serving": {"public": True, "auth": "none"}}])
    assert "open to anyone" in problems(open_spec)["models[0].serving.public"]
    for accepted in ({"models": [{"name": "a", "serving": {"public": True, "auth": "api_key"}}]},
                     {"models": [{"name": "a", "serving": {"public": True}}],
                      "networking": {"allowed_cidrs": ["10.0.0.0/8"]}}):
        assert check(make_spec(kubernetes=PUBLIC, **accepted)) == []


@pytest.mark.parametrize("missing", ["ingress_host", "ingress_tls_secret"])
def test_a_public_endpoint_needs_a_host_and_its_tls_secret(missing: str) -> None:
    settings = {k: v for k, v in PUBLIC.items() if k != missing}
    spec = make_spec(kubernetes=settings, models=[{"name": "a"}, {"name": "b", "serving": {"public": True,
                                                                                          "auth": "api_key"}}])
    found = problems(spec)
    assert list(found) == [f"kubernetes.{missing}"]
    assert "models[1].serving.public" in found[f"kubernetes.{missing}"] and "HTTPS" in found[f"kubernetes.{missing}"]
    assert check(make_spec(kubernetes=settings)) == []  # nothing public: nothing needed


@pytest.mark.parametrize(("key", "value"), [("ingress_host", "ML.example.com"), ("ingress_host", "https://ml.x"),
                                            ("ingress_host", "ml_x.example.com"), ("cluster_domain", "cluster.local."),
                                            ("cluster_domain", ""), ("ingress_tls_secret", "TLS/cert")])
def test_hosts_domains_and_secret_names_must_be_dns_names(key: str, value: str) -> None:
    found = problems(make_spec(kubernetes={**PUBLIC, key: value},
                               models=[{"name": "a", "serving": {"public": True, "auth": "api_key"}}]))
    assert list(found) == [f"kubernetes.{key}"] and repr(value) in found[f"kubernetes.{key}"]
    assert check(make_spec(kubernetes={"cluster_domain": "k8s.corp.example"})) == []


def stack_spec(**overrides: Any) -> PlatformSpec:
    """`make_spec`'s spec as the stack loader builds it: on its environment's defaults."""
    data: dict[str, Any] = {"target": "kubernetes", "models": [{"name": "churn"}], **overrides}
    return PlatformSpec.model_validate(with_defaults({}, data)[0])


def notices(spec: PlatformSpec) -> dict[str, str]:
    return {n.path: n.message for n in ignored(spec)}


#: Notices a staging or prod spec with defaults gets: what its environment's defaults promise and this target
#: does not do (dev defaults are no news).
DEFAULT_NOTICES = {"registry.artifacts.versioning", "registry.database.backup_retention_days",
                   "kubernetes.shared_storage_class"}


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_outside_dev_the_default_promises_the_target_breaks_are_named(environment: str) -> None:
    assert ignored(stack_spec()) == []  # dev
    rolling = [{"name": "churn", "serving": {"rollout": {"strategy": "rolling"}}}]
    found = notices(stack_spec(environment=environment, models=rolling))
    prod_only = {"registry.database.high_availability"} if environment == "prod" else set()
    assert set(found) == DEFAULT_NOTICES | prod_only
    assert "ReadWriteOnce" in found["kubernetes.shared_storage_class"]
    assert "none kept" in found["registry.database.backup_retention_days"]
    kept = stack_spec(environment=environment, models=rolling, kubernetes={"shared_storage_class": "efs"},
                      registry={"database": {"backup_retention_days": 0, "high_availability": False},
                                "artifacts": {"versioning": False}})
    assert ignored(kept) == []


def test_in_dev_only_what_the_spec_writes_is_named() -> None:
    found = notices(stack_spec(registry={"database": {"backup_retention_days": 3}}))
    assert set(found) == {"registry.database.backup_retention_days"}


def test_settings_the_target_ignores_are_warned_about_by_key() -> None:
    spec = stack_spec(region="eu-west-1", tags={"team": "ml"}, networking={"private": False,
                                                                         "existing_network": "vpc-1"},
                     training={"min_nodes": 1, "max_nodes": 5}, kubernetes={"prometheus_operator": True},
                     registry={"database": {"high_availability": True},
                               "artifacts": {"noncurrent_version_retention_days": 5}},
                     models=[{"name": "a", "serving": {"min_replicas": 0,
                                                       "rollout": {"strategy": "canary", "canary_percent": 20}},
                              "monitoring": {"alerts": [{"kind": "email", "address": "x@example.com"}]}},
                             {"name": "b", "serving": {"rollout": {"strategy": "rolling", "bake_minutes": 3}}}])
    found = notices(spec)
    assert set(found) == {
        "region", "tags", "networking.private", "networking.existing_network", "training.min_nodes",
        "training.max_nodes", "registry.database.high_availability",
        "registry.artifacts.noncurrent_version_retention_days", "models[0].serving.min_replicas",
        "models[0].serving.rollout.strategy", "models[0].serving.rollout.canary_percent",
        "models[0].monitoring.alerts", "models[1].serving.rollout.bake_minutes"}
    assert "rolling update" in found["models[0].serving.rollout.strategy"]
    assert "Alertmanager" in found["models[0].monitoring.alerts"]
    assert "app.kubernetes.io" in found["tags"] and "external_url" in found["registry.database.high_availability"]
    assert "becomes 1" in found["models[0].serving.min_replicas"]


def test_an_external_database_and_bucket_make_database_settings_unused_and_protect_partial() -> None:
    spec = stack_spec(environment="prod", kubernetes={"shared_storage_class": "efs"},
                      models=[{"name": "churn", "serving": {"rollout": {"strategy": "rolling"}}}],
                      registry={"database": {"external_url": {"ref": "pg/uri"}, "size": "large"},
                               "artifacts": {"s3_endpoint": "https://s3.example.com", "bucket": "ml",
                                             "versioning": False}})
    found = notices(spec)
    # prod's HA and backup defaults are the external database's business: not news, only the changed size is.
    assert set(found) == {"registry.database.size", "protect"}
    assert "external" in found["registry.database.size"] and "not protected" in found["protect"]


def test_ingress_settings_without_a_public_endpoint_are_unused() -> None:
    found = notices(stack_spec(kubernetes=PUBLIC, networking={"allowed_cidrs": ["10.0.0.0/8"]}))
    assert {"kubernetes.ingress_class", "kubernetes.ingress_host", "kubernetes.ingress_tls_secret",
            "networking.allowed_cidrs"} <= set(found)
    public = stack_spec(kubernetes=PUBLIC, models=[{"name": "a", "serving": {"public": True, "auth": "api_key"}}])
    assert not any("ingress" in key for key in notices(public))


# ------------------------------------------------------------------------------------------------ monitoring


def test_alerts_cover_drift_serving_errors_and_quality_floors() -> None:
    spec = make_spec(models=[{"name": "churn", "monitoring": {"min_quality": {"roc_auc": 0.8}}}])
    rules = {r["alert"]: r for r in alert_rules(spec.models[0], "ml")}
    assert {"ShipyardCovariateShift", "ShipyardPriorShift", "ShipyardMajorDrift", "ShipyardDriftMetricsMissing",
            "ShipyardServingErrors", "ShipyardQualityDegradedRocAuc", "ShipyardDataQuality"} == set(rules)
    assert 'model="churn"' in rules["ShipyardCovariateShift"]["expr"]
    assert "< 0.8" in rules["ShipyardQualityDegradedRocAuc"]["expr"]
    assert rules["ShipyardDataQuality"]["expr"] == 'max(shipyard_data_quality_problems{model="churn"}) > 0'
    assert rules["ShipyardDataQuality"]["labels"]["severity"] == "warning"  # data quality alerts, never retrains
    assert all(r["labels"]["severity"] in {"warning", "critical"} for r in rules.values())


def test_dashboard_is_the_spec_one_or_the_model_registry_page() -> None:
    spec = make_spec()
    assert dashboard_url(spec, spec.models[0], "ml") == "http://mlflow.ml.svc.cluster.local:5000/#/models/churn"
    other = make_spec(kubernetes={"cluster_domain": "corp.internal"})
    assert dashboard_url(other, other.models[0], "ml") == "http://mlflow.ml.svc.corp.internal:5000/#/models/churn"
    grafana = make_spec(kubernetes={"dashboard_url": "https://grafana/d/x"})
    assert dashboard_url(grafana, grafana.models[0], "ml") == "https://grafana/d/x"
