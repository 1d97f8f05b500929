"""Pure parts of the Azure target: rules, names, sizes, network carving, image references, request shapes."""

from __future__ import annotations

import datetime as dt

import pytest

from infra.spec import PlatformSpec
from infra.targets.azure import layout, rules
from infra.targets.azure.foundation import carve, existing_network, image_reference
from infra.targets.azure.iam import stable_guid
from infra.targets.azure.names import RULES, azure_name, global_name
from infra.targets.azure.sizes import SIZES, backup_days, postgres_storage_gb, replica
from pipelines.adapters.azure import job_start_url, metric_requests
from pipelines.sinks import Metric

VNET = "/subscriptions/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/resourceGroups/net-rg/providers/Microsoft.Network/" \
       "virtualNetworks/hub"


def spec(**overlay) -> PlatformSpec:
    return PlatformSpec.model_validate({"target": "azure", "region": "westeurope", "models": [{"name": "churn"}],
                                        **overlay})


def problems(**overlay) -> dict[str, str]:
    return {p.path: p.message for p in rules.check(spec(**overlay))}


def test_valid_spec_has_no_problem() -> None:
    assert rules.check(spec()) == []


@pytest.mark.parametrize(("region", "message"), [
    ("West Europe", "'West Europe' is a display name; the region is 'westeurope'"),
    ("eu-west-1", "'eu-west-1' is not an Azure region (e.g. 'westeurope', 'eastus2')"),
])
def test_regions(region: str, message: str) -> None:
    assert problems(region=region)["region"] == message


def test_gpu_needs_a_serverless_gpu_region_and_one_gpu() -> None:
    found = problems(training={"size": "gpu", "gpu_count": 2},
                     models=[{"name": "churn", "serving": {"size": "gpu"}}])
    assert set(found) == {"training.size", "training.gpu_count", "models[0].serving.size"}
    assert problems(region="swedencentral", training={"size": "gpu", "gpu_count": 1}) == {}


def test_existing_network_references_and_public_endpoints() -> None:
    assert problems(networking={"existing_network": VNET}) == {}
    assert "is not a VNet resource id" in problems(networking={"existing_network": "vnet-1"})[
        "networking.existing_network"]
    bad_ref = {"database": {"external_url": {"ref": "mlflow-db"}}}
    assert "Key Vault secret URI" in problems(registry=bad_ref)["registry.database.external_url.ref"]
    hook = {"name": "churn", "serving": {"public": True},
            "monitoring": {"alerts": [{"kind": "webhook", "url": {"ref": "hook"}}]}}
    assert set(problems(models=[hook])) == {"models[0].serving.public", "models[0].monitoring.alerts[0].url.ref"}


def test_ignored_names_what_differs_only() -> None:
    assert {n.path for n in rules.ignored(spec(registry={"database": {"backup_retention_days": 7,
                                                                      "storage_gb": 32}}))} == set()
    notices = {n.path: n.message for n in rules.ignored(spec(
        environment="staging", training={"spot": False, "max_nodes": 5},
        registry={"database": {"backup_retention_days": 2, "storage_gb": 40}},
        models=[{"name": "churn", "serving": {"auth": "iam", "rollout": {"strategy": "canary"}}}]))}
    assert set(notices) == {"training.spot", "training.max_nodes", "registry.database.storage_gb",
                            "registry.database.backup_retention_days",
                            "models[0].serving.auth", "models[0].serving.rollout.strategy"}
    assert notices["registry.database.storage_gb"].startswith("40 is rounded up to 64 GiB")
    assert notices["registry.database.backup_retention_days"].startswith("2 becomes 7")


def test_names_fit_every_rule_for_the_longest_spec() -> None:
    long = spec(name="p" * 20 + "-" + "q" * 19, environment="staging", models=[{"name": "m" * 40}])
    names = layout.generated_names(long)
    assert all(RULES[kind].accepts(name) for kind, name in names.values()), names
    assert rules.name_problems(long) == []


def test_global_names_depend_on_subscription_and_stay_stable() -> None:
    one = global_name("shipyard-dev", "artifacts", "sub-1", kind="storage")
    assert one == global_name("shipyard-dev", "artifacts", "sub-1", kind="storage")
    assert one != global_name("shipyard-dev", "artifacts", "sub-2", kind="storage")
    assert RULES["storage"].accepts(one) and one.startswith("shipyarddev")
    vault = global_name("a" * 30 + "-" + "b" * 9 + "-staging", "kv", "sub", kind="key_vault")
    assert len(vault) == 24 and "--" not in vault and RULES["key_vault"].accepts(vault)
    assert azure_name("shipyard-dev", "churn", kind="container_app") == "shipyard-dev-churn"
    assert len(azure_name("shipyard-staging", "m" * 40, kind="container_app")) == 32
    with pytest.raises(ValueError):
        global_name("x", "y", "z", kind="container_app")


def test_sizes_subnets_images_and_guids() -> None:
    assert set(SIZES) == {"small", "medium", "large", "gpu"}
    assert replica("gpu", "Consumption-GPU-NC8as-T4") == (8.0, "56Gi", "gpu")
    assert replica("small", "Consumption-GPU-NC8as-T4") == (1.0, "2Gi", "Consumption")
    assert (postgres_storage_gb(20), postgres_storage_gb(64), backup_days(1), backup_days(40)) == (32, 64, 7, 35)
    assert carve("10.52.0.0/16") == {"apps": "10.52.0.0/23", "postgres": "10.52.2.0/26",
                                     "endpoints": "10.52.2.64/26"}
    with pytest.raises(ValueError, match="too small"):
        carve("10.52.0.0/24")
    assert existing_network(VNET) == ("net-rg", "hub")
    server = "acr1.azurecr.io"
    assert image_reference("ghcr.io/shipyard-ml/runtime:0.1.0", server) == f"{server}/shipyard-ml/runtime:0.1.0"
    assert image_reference("python@sha256:" + "a" * 64, server) == f"{server}/python@sha256:" + "a" * 64
    assert image_reference(f"{server}/ml/runtime:2", server) == f"{server}/ml/runtime:2"
    assert stable_guid("a", "b") == stable_guid("a", "b") != stable_guid("a", "c")


def test_request_shapes() -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    [body] = metric_requests([Metric("m", {"feature": "x"}, 2.0), Metric("m", {"feature": "y"}, float("inf"))],
                             namespace="ns", model="churn", version="4", timestamp=at)
    assert body == {"time": "2026-01-02T03:04:05Z", "data": {"baseData": {
        "metric": "m", "namespace": "ns", "dimNames": ["Model", "Version", "Feature"],
        "series": [{"dimValues": ["churn", "4", "x"], "min": 2.0, "max": 2.0, "sum": 2.0, "count": 1}]}}}
    assert job_start_url("/subscriptions/s/x/jobs/j", "https://arm/") == \
        "https://arm/subscriptions/s/x/jobs/j/start?api-version=2025-02-02-preview"
