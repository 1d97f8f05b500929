"""`shipyard cost`: the arithmetic of each meter (pure, on crafted resources), how a region is resolved, and every
shipped stack with every resource priced, free, usage-billed, requested or listed as unknown; never guessed."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from plan_checks import ROOT

from infra.cost import PRICES_DIR, STATUSES, PriceTable, Rate, command, cpu_cores, estimate, gib, load_prices

SRC = Rate(0.0, "https://example.test/prices", "2026-01")
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def rate(usd: float) -> Rate:
    return Rate(usd, SRC.source, SRC.date)


def table(prices: dict[str, dict[str, float]], types: dict[str, str], **extra: Any) -> PriceTable:
    return PriceTable(cloud="test", path=Path("test.yaml"), prices={t: {k: rate(v) for k, v in p.items()}
                                                                     for t, p in prices.items()},
                      types={t: {"meter": m} for t, m in types.items()}, basis="test rates", **extra)


def res(urn: str, type_: str, inputs: dict[str, Any], parent: str = "comp") -> dict[str, Any]:
    return {"urn": urn, "type": type_, "name": urn, "parent": parent, "inputs": inputs}


COMPONENT = res("comp", "shipyard:index:ServingEndpoint", {}, parent="")


def line(est: Any, urn: str) -> Any:
    return next(x for x in est.lines if x.urn == urn).quote


def test_rds_multi_az_bills_primary_and_standby_and_peaks_at_the_storage_ceiling() -> None:
    db = res("db", "aws:rds/instance:Instance", {"engine": "postgres", "instanceClass": "db.t4g.medium",
                                                 "multiAz": True, "allocatedStorage": 50.0,
                                                 "maxAllocatedStorage": 100.0, "storageType": "gp3"})
    prices = table({"rds_postgres_hour": {"db.t4g.medium": 0.065}, "rds_storage_gb_month": {"gp3": 0.115}},
                   {"aws:rds/instance:Instance": "rds_instance"})
    quote = line(estimate([COMPONENT, db], stack="s", target="aws", region="r", table=prices), "db")
    assert quote.status == "priced"
    assert quote.idle == pytest.approx(0.065 * 730 * 2 + 50 * 0.115 * 2)    # 94.90 + 11.50
    assert quote.peak == pytest.approx(0.065 * 730 * 2 + 100 * 0.115 * 2)   # 94.90 + 23.00


def test_an_endpoint_idles_at_the_scaling_minimum_and_peaks_at_the_maximum_of_its_component() -> None:
    config = res("cfg", "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                 {"productionVariants": [{"instanceType": "ml.m5.xlarge", "initialInstanceCount": 2.0}]})
    target = res("scale", "aws:appautoscaling/target:Target",
                 {"serviceNamespace": "sagemaker", "minCapacity": 2.0, "maxCapacity": 8.0})
    other = res("other", "shipyard:index:ServingEndpoint", {}, parent="")
    elsewhere = res("scale2", "aws:appautoscaling/target:Target",
                    {"serviceNamespace": "sagemaker", "minCapacity": 5.0, "maxCapacity": 50.0}, parent="other")
    prices = table({"sagemaker_hosting_hour": {"ml.m5.xlarge": 0.269}},
                   {"aws:sagemaker/endpointConfiguration:EndpointConfiguration": "sagemaker_endpoint",
                    "aws:appautoscaling/target:Target": "none"})
    est = estimate([COMPONENT, other, config, target, elsewhere], stack="s", target="aws", region="r", table=prices)
    quote = line(est, "cfg")
    assert (quote.idle, quote.peak) == (pytest.approx(0.269 * 730 * 2), pytest.approx(0.269 * 730 * 8))
    assert est.per_component()["ServingEndpoint comp"] == (pytest.approx(392.74), pytest.approx(1570.96))
    assert est.total("idle") == pytest.approx(392.74) and est.total("peak") == pytest.approx(1570.96)


def test_a_fargate_service_is_its_task_definition_times_the_desired_count() -> None:
    task = res("task", "aws:ecs/taskDefinition:TaskDefinition",
               {"family": "mlflow", "cpu": "1024", "memory": "2048", "runtimePlatform": {"cpuArchitecture": "X86_64"}})
    service = res("svc", "aws:ecs/service:Service", {"taskDefinition": "arn:aws:ecs:r:1:task-definition/mlflow:1",
                                                     "desiredCount": 2.0})
    prices = table({"fargate_vcpu_hour": {"X86_64": 0.04048}, "fargate_gb_hour": {"X86_64": 0.004445}},
                   {"aws:ecs/service:Service": "fargate_service", "aws:ecs/taskDefinition:TaskDefinition": "none"})
    quote = line(estimate([COMPONENT, task, service], stack="s", target="aws", region="r", table=prices), "svc")
    assert quote.idle == quote.peak == pytest.approx(2 * (1 * 0.04048 + 2 * 0.004445) * 730)


def test_a_missing_figure_or_type_is_unknown_named_and_out_of_the_totals() -> None:
    config = res("cfg", "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                 {"productionVariants": [{"instanceType": "ml.m5.large", "initialInstanceCount": 1.0}]})
    mystery = res("x", "aws:new/thing:Thing", {})
    usage = res("b", "aws:s3/bucket:Bucket", {})
    prices = table({"sagemaker_hosting_hour": {"ml.m5.xlarge": 0.269}},
                   {"aws:sagemaker/endpointConfiguration:EndpointConfiguration": "sagemaker_endpoint",
                    "aws:s3/bucket:Bucket": "usage"})
    est = estimate([COMPONENT, config, mystery, usage], stack="s", target="aws", region="r", table=prices)
    assert line(est, "cfg").status == "unknown"
    assert line(est, "cfg").missing == ["sagemaker_hosting_hour.ml.m5.large"]
    assert line(est, "x").status == "unknown"
    assert est.by_status("unknown") == {"aws:new/thing:Thing": 1,
                                        "aws:sagemaker/endpointConfiguration:EndpointConfiguration": 1}
    assert est.by_status("usage") == {"aws:s3/bucket:Bucket": 1}
    assert est.total("idle") == est.total("peak") == 0
    assert not est.complete
    assert "2 resource(s) unknown" in est.summary() and "1 usage-billed not included" in est.summary()


def test_kubernetes_reports_requests_scaled_by_the_hpa_and_prices_them_only_at_reference_rates() -> None:
    deployment = res("dep", "kubernetes:apps/v1:Deployment", {"metadata": {"name": "churn-serving"}, "spec": {
        "template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}},
                                             {"resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}],
                              "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "64Mi"}}}]}}}})
    hpa = res("hpa", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", {"spec": {
        "scaleTargetRef": {"name": "churn-serving"}, "minReplicas": 2.0, "maxReplicas": 8.0}})
    claim = res("pvc", "kubernetes:core/v1:PersistentVolumeClaim", {"spec": {"resources": {
        "requests": {"storage": "20Gi"}}}})
    types = {"kubernetes:apps/v1:Deployment": "pod_requests", "kubernetes:core/v1:PersistentVolumeClaim":
             "volume_claim", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": "none"}
    resources = [COMPONENT, deployment, hpa, claim]
    est = estimate(resources, stack="s", target="kubernetes", region=None, table=table({}, types))
    # an init container runs alone: the pod's CPU request is max(sum of containers, largest init) = 1
    assert line(est, "dep").requests == {"vcpu": (2.0, 8.0), "memory_gib": (pytest.approx(1.125), pytest.approx(4.5))}
    assert line(est, "dep").status == "requests" and est.summary().startswith("cost: not priced")
    assert est.requests()["volume_gib"] == (20.0, 20.0)
    rates = {"vcpu_hour": rate(0.03), "gib_hour": rate(0.004), "volume_gib_month": rate(0.1)}
    priced = estimate(resources, stack="s", target="kubernetes", region=None,
                      table=table({}, types, reference_rates=rates))
    assert line(priced, "dep").idle == pytest.approx((2 * 0.03 + 1.125 * 0.004) * 730)
    assert line(priced, "pvc").peak == pytest.approx(2.0)


def test_quantities() -> None:
    assert [cpu_cores(v) for v in ("250m", "1", "2.5")] == [0.25, 1.0, 2.5]
    assert [gib(v) for v in ("512Mi", "20Gi", "1Ti", 0)] == [0.5, 20.0, 1024.0, 0.0]
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        gib("lots")


def test_a_region_without_prices_uses_the_declared_reference_region_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "cloud: c\nreference_region: r1\nregions:\n  r1:\n    read_on: '2026-01-02'\n"
        "    kms_key_month: {customer_managed: {usd: 1.0, source: 'https://x.test', date: '2026'}}\n")
    own = load_prices("c", "r1", tmp_path)
    assert own.basis == "r1 rates" and own.read_on == "2026-01-02" and own.rate("kms_key_month", "customer_managed")
    other = load_prices("c", "r9", tmp_path)
    assert other.basis.startswith("r1 reference rates: r9 is not in c.yaml")
    missing = load_prices("nowhere", "r1", tmp_path)
    assert missing.path is None and "every resource is unknown" in missing.basis


def test_the_shipped_tables_name_a_source_and_date_for_every_figure() -> None:
    for path in sorted(PRICES_DIR.glob("*.yaml")):
        loaded = load_prices(path.stem, None)
        for figures in loaded.prices.values():
            for figure in figures.values():
                assert figure.source.startswith("https://") and figure.date, path


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_of_every_shipped_stack_is_priced_or_listed(stack: str, captured: Callable[..., Any]) -> None:
    from infra.stackfile import load_stack

    capture = captured(stack)
    spec = load_stack(stack, project_dir=ROOT).spec
    resources = [r.to_json() for r in capture.resources]
    est = estimate(resources, stack=stack, target=spec.target, region=spec.region,
                   table=load_prices(spec.target, spec.region))
    billable = [r for r in resources if not r["type"].startswith(("shipyard:", "pulumi:providers:"))]
    assert len(est.lines) == len(billable)
    for item in est.lines:
        assert item.quote.status in STATUSES
        if item.quote.status == "unknown":   # listed with its reason: the figure or type the table lacks
            assert est.by_status("unknown")[item.type] >= 1 and item.quote.missing and item.quote.detail
        if item.quote.status != "priced":
            assert item.quote.idle == item.quote.peak == 0
        else:
            assert 0 <= item.quote.idle <= item.quote.peak and item.quote.rates
    document = est.to_json()
    assert document["idle"] <= document["peak"]
    if spec.target == "local":
        assert document["idle"] == document["peak"] == 0 and "nothing is billed" in document["summary"]
    if spec.target in ("aws", "gcp", "azure"):
        assert est.table.read_on and f"prices read {est.table.read_on}" in document["summary"]


def test_cost_command_json_on_aws_prod(capsys: pytest.CaptureFixture[str]) -> None:
    assert command(argparse.Namespace(stack="aws-prod", config=None, json=True)) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["prices_read_on"] == "2026-12-03"
    assert "us-east-1 reference rates: eu-west-1 is not in aws.yaml" in document["basis"]
    registry = document["components"]["ModelRegistry shipyard-prod-registry"]
    database = next(r for r in document["resources"] if r["type"] == "aws:rds/instance:Instance")
    assert database["idle"] == pytest.approx(0.065 * 730 * 2 + 50 * 0.115 * 2, abs=0.01)
    assert registry["idle"] >= database["idle"]
    endpoints = [r for r in document["resources"] if r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint"]
    gateways = [r for r in endpoints if r["status"] == "none"]
    assert all(r["detail"].startswith("gateway endpoint") for r in gateways) and len(gateways) < len(endpoints)
    assert document["unknown"]["aws:ec2/vpcEndpoint:VpcEndpoint"] == len(endpoints) - len(gateways)


def test_cloud_run_idles_min_instances_at_the_idle_rates_and_peaks_max_instances_busy() -> None:
    def service(urn: str, cpu_idle: bool) -> dict[str, Any]:
        return res(urn, "gcp:cloudrunv2/service:Service", {"template": {
            "scaling": {"minInstanceCount": 2.0, "maxInstanceCount": 8.0},
            "containers": [{"resources": {"cpuIdle": cpu_idle, "limits": {"cpu": "2", "memory": "4Gi"}}},
                           {"resources": {"cpuIdle": cpu_idle, "limits": {"cpu": "500m", "memory": "512Mi"}}}]}})
    rates = {"vcpu_second": {"request_active": 0.000024, "request_idle": 0.0000025, "instance": 0.000018},
             "gib_second": {"request_active": 0.0000025, "request_idle": 0.0000025, "instance": 0.000002}}
    types = {"gcp:cloudrunv2/service:Service": "cloud_run_service"}
    est = estimate([COMPONENT, service("req", True), service("inst", False)], stack="s", target="gcp",
                   region="r", table=table(rates, types))
    month = 730 * 3600
    request, instance = line(est, "req"), line(est, "inst")
    assert request.idle == pytest.approx(2 * month * (2.5 * 0.0000025 + 4.5 * 0.0000025))
    assert request.peak == pytest.approx(8 * month * (2.5 * 0.000024 + 4.5 * 0.0000025))
    assert (instance.idle, instance.peak) == (pytest.approx(2 * month * (2.5 * 0.000018 + 4.5 * 0.000002)),
                                              pytest.approx(8 * month * (2.5 * 0.000018 + 4.5 * 0.000002)))
    # without the idle-instance rates a request-based service is unknown, naming them; never priced at active rates
    del rates["vcpu_second"]["request_idle"], rates["gib_second"]["request_idle"]
    unpriced = line(estimate([COMPONENT, service("req", True)], stack="s", target="gcp", region="r",
                             table=table(rates, types)), "req")
    assert unpriced.status == "unknown"
    assert unpriced.missing == ["vcpu_second.request_idle", "gib_second.request_idle"]


def test_a_container_app_idles_min_replicas_at_the_idle_rates_and_peaks_max_replicas_active() -> None:
    app = res("app", "azure-native:app:ContainerApp", {"template": {
        "scale": {"minReplicas": 1.0, "maxReplicas": 4.0},
        "containers": [{"resources": {"cpu": 1.0, "memory": "2Gi"}}]}})
    prices = table({"vcpu_second": {"active": 0.000024, "idle": 0.000003},
                    "gib_second": {"active": 0.000003, "idle": 0.000003}},
                   {"azure-native:app:ContainerApp": "container_app"})
    quote = line(estimate([COMPONENT, app], stack="s", target="azure", region="r", table=prices), "app")
    month = 730 * 3600
    assert quote.idle == pytest.approx(month * (0.000003 + 2 * 0.000003))          # 23.65
    assert quote.peak == pytest.approx(4 * month * (0.000024 + 2 * 0.000003))      # 315.36
    unbounded = res("open", "azure-native:app:ContainerApp", {"template": {"containers": [{"resources": {}}]}})
    assert line(estimate([COMPONENT, unbounded], stack="s", target="azure", region="r", table=prices),
                "open").status == "unknown"


def test_cloud_sql_reads_the_custom_tier_and_a_regional_instance_bills_its_standby() -> None:
    def instance(urn: str, availability: str, tier: str = "db-custom-2-7680") -> dict[str, Any]:
        return res(urn, "gcp:sql/databaseInstance:DatabaseInstance", {"databaseVersion": "POSTGRES_16", "settings": {
            "tier": tier, "edition": "ENTERPRISE", "availabilityType": availability, "diskType": "PD_SSD",
            "diskSize": 50.0, "diskAutoresize": True, "diskAutoresizeLimit": 100.0}})
    prices = table({"cloud_sql_vcpu_hour": {"ENTERPRISE": 0.0413}, "cloud_sql_memory_gb_hour": {"ENTERPRISE": 0.007},
                    "cloud_sql_storage_gb_month": {"PD_SSD": 0.17}},
                   {"gcp:sql/databaseInstance:DatabaseInstance": "cloud_sql_instance"})
    est = estimate([COMPONENT, instance("ha", "REGIONAL"), instance("one", "ZONAL"), instance("x", "ZONAL", "db-f1")],
                   stack="s", target="gcp", region="r", table=prices)
    hourly = 2 * 0.0413 + 7.5 * 0.007
    assert line(est, "one").idle == pytest.approx(hourly * 730 + 50 * 0.17)
    assert line(est, "ha").idle == pytest.approx(2 * (hourly * 730 + 50 * 0.17))
    assert line(est, "ha").peak == pytest.approx(2 * (hourly * 730 + 100 * 0.17))
    assert line(est, "x").status == "unknown" and "db-f1" in line(est, "x").missing[0]


def test_a_postgres_flexible_server_with_high_availability_bills_two_copies() -> None:
    def server(urn: str, mode: str) -> dict[str, Any]:
        return res(urn, "azure-native:dbforpostgresql:Server", {"sku": {"name": "Standard_D2ds_v5"},
                                                                "storage": {"storageSizeGB": 64.0},
                                                                "highAvailability": {"mode": mode}})
    prices = table({"postgres_flexible_hour": {"Standard_D2ds_v5": 0.2},
                    "postgres_flexible_storage_gb_month": {"premium_ssd": 0.1}},
                   {"azure-native:dbforpostgresql:Server": "postgres_flexible_server"})
    est = estimate([COMPONENT, server("ha", "ZoneRedundant"), server("one", "Disabled")], stack="s",
                   target="azure", region="r", table=prices)
    assert line(est, "one").idle == line(est, "one").peak == pytest.approx(0.2 * 730 + 64 * 0.1)
    assert line(est, "ha").idle == pytest.approx(2 * (0.2 * 730 + 64 * 0.1))


def test_a_gke_node_pool_is_its_machine_and_disk_at_the_autoscaler_totals_spot_at_the_spot_rate() -> None:
    def pool(urn: str, spot: bool, autoscaling: dict[str, float], **extra: Any) -> dict[str, Any]:
        return res(urn, "gcp:container/nodePool:NodePool", {"autoscaling": autoscaling, **extra, "nodeConfig": {
            "machineType": "n2-standard-8", "spot": spot, "diskType": "pd-balanced", "diskSizeGb": 100.0}})
    prices = table({"compute_hour": {"n2-standard-8": 0.4}, "compute_spot_hour": {"n2-standard-8": 0.1},
                    "persistent_disk_gb_month": {"pd-balanced": 0.1}},
                   {"gcp:container/nodePool:NodePool": "gke_node_pool"})
    totals = {"totalMinNodeCount": 0.0, "totalMaxNodeCount": 4.0}
    est = estimate([COMPONENT, pool("std", False, totals), pool("spot", True, totals),
                    pool("zonal", False, {"minNodeCount": 1.0, "maxNodeCount": 2.0}, nodeLocations=["a", "b", "c"]),
                    pool("nowhere", False, {"minNodeCount": 1.0, "maxNodeCount": 2.0})],
                   stack="s", target="gcp", region="r", table=prices)
    assert (line(est, "std").idle, line(est, "std").peak) == (0, pytest.approx(4 * (0.4 * 730 + 100 * 0.1)))
    assert line(est, "spot").peak == pytest.approx(4 * (0.1 * 730 + 100 * 0.1))
    assert (line(est, "zonal").idle, line(est, "zonal").peak) == (pytest.approx(3 * 302), pytest.approx(6 * 302))
    assert line(est, "nowhere").status == "unknown" and "nodeLocations" in line(est, "nowhere").missing[0]


def test_flat_fees_per_hour_day_and_month_and_secret_versions_per_location() -> None:
    secret = res("sec", "gcp:secretmanager/secret:Secret", {"secretId": "db", "replication": {"userManaged": {
        "replicas": [{"location": "europe-west1"}, {"location": "europe-west4"}]}}})
    versions = [res(f"v{i}", "gcp:secretmanager/secretVersion:SecretVersion", {"secret": "projects/p/secrets/db"})
                for i in range(3)]
    other = res("v9", "gcp:secretmanager/secretVersion:SecretVersion", {"secret": "projects/p/secrets/other"})
    registry = res("acr", "azure-native:containerregistry:Registry", {"sku": {"name": "Premium"}})
    prices = table({"secret_version_month": {"active": 0.06}, "gke_cluster_hour": {"standard": 0.10},
                    "container_registry_day": {"Premium": 1.667}},
                   {"gcp:secretmanager/secret:Secret": "secret_versions",
                    "gcp:container/cluster:Cluster": "gke_cluster",
                    "azure-native:containerregistry:Registry": "container_registry",
                    "gcp:secretmanager/secretVersion:SecretVersion": "none"})
    est = estimate([COMPONENT, secret, *versions, other, registry, res("gke", "gcp:container/cluster:Cluster", {})],
                   stack="s", target="gcp", region="r", table=prices)
    assert line(est, "sec").idle == pytest.approx(3 * 2 * 0.06)
    assert line(est, "gke").idle == line(est, "gke").peak == pytest.approx(73.0)
    assert line(est, "acr").idle == pytest.approx(1.667 * 730 / 24)
    basic = table({"container_registry_day": {"Basic": 0.167}}, {"azure-native:containerregistry:Registry":
                                                                 "container_registry"})
    assert line(estimate([COMPONENT, registry], stack="s", target="azure", region="r", table=basic),
                "acr").missing == ["container_registry_day.Premium"]


def test_cost_command_on_gcp_and_azure_names_the_region_basis_and_the_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert command(argparse.Namespace(stack="gcp-dev", config=None, json=True)) == 0
    gcp = json.loads(capsys.readouterr().out)
    assert gcp["basis"] == "europe-west1 rates" and gcp["prices_read_on"] == "2026-12-03"
    assert gcp["unknown"]["gcp:sql/databaseInstance:DatabaseInstance"] == 1    # no europe-west1 Cloud SQL figures
    assert command(argparse.Namespace(stack="azure-dev", config=None, json=False)) == 0
    azure = capsys.readouterr().out
    assert "centralus reference rates: westeurope is not in azure.yaml" in azure and "prices read 2026-12-03" in azure
    assert "techcommunity.microsoft.com" in azure and "container_registry_day.Premium" in azure
