"""`shipyard cost`: a monthly estimate of a stack, per component and resource, at idle and at maximum scale.

Computed from the offline plan's captured resources (instance classes, counts, storage, the autoscaling
bounds the spec's replica bounds became) and a price table in the repository, `infra/prices/<target>.yaml`,
which names the source page and date of every figure. Nothing is fetched from a pricing API. Each resource
is one of:

- `priced`: every figure its meter needs is in the table; idle and peak are monthly amounts;
- `none`: the type carries no charge of its own (or its capacity is priced on another resource, said in the note);
- `usage`: charged only by use (requests, stored bytes, job seconds), which the spec does not give: listed, not summed;
- `requests` (Kubernetes): an existing cluster's capacity: vCPU and GiB requested, priced only at reference rates;
- `unknown`: the type is not in the table, or a figure its meter needs is not: listed by type, never guessed.

The arithmetic is pure: `estimate(resources, ...)` over plain resource dicts, so it is tested without a runtime.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRICES_DIR = Path(__file__).resolve().parent / "prices"
STATUSES = ("priced", "requests", "usage", "none", "unknown")


@dataclass(frozen=True)
class Rate:
    """One price figure and where it was read."""

    usd: float
    source: str
    date: str

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"usd": self.usd, "source": self.source, "date": self.date}


@dataclass(frozen=True)
class PriceTable:
    """The prices of one cloud, resolved for one region."""

    cloud: str
    path: Path | None
    currency: str = "USD"
    hours_per_month: float = 730.0
    #: price list -> key -> rate, for the region the estimate uses.
    prices: dict[str, dict[str, Rate]] = field(default_factory=dict)
    #: how the region was resolved, said with every estimate.
    basis: str = ""
    read_on: str | None = None
    types: dict[str, dict[str, Any]] = field(default_factory=dict)
    free: bool = False
    #: Kubernetes: optional reference rates for requested capacity.
    reference_rates: dict[str, Rate] = field(default_factory=dict)

    def rate(self, table: str, key: str) -> Rate | None:
        """A figure of the table, or None when nobody sourced it."""
        return self.prices.get(table, {}).get(key)


def _rates(node: dict[str, Any] | None) -> dict[str, Rate]:
    return {str(k): Rate(float(v["usd"]), str(v["source"]), str(v["date"])) for k, v in (node or {}).items()}


def load_prices(target: str, region: str | None, prices_dir: Path = PRICES_DIR) -> PriceTable:
    """The price table of a target, resolved for `region` (its own section, else the declared reference region)."""
    path = prices_dir / f"{target}.yaml"
    if not path.is_file():
        return PriceTable(cloud=target, path=None, basis=f"no price table for target {target!r} ({path.name} "
                                                        "missing): every resource is unknown")
    data = yaml.safe_load(path.read_text()) or {}
    regions = data.get("regions") or {}
    reference = data.get("reference_region")
    if region in regions:
        chosen, basis = region, f"{region} rates"
    elif reference in regions:
        chosen = reference
        basis = (f"{reference} reference rates: {region or 'this region'} is not in {path.name}; on-demand rates "
                 "differ by region")
    else:
        chosen, basis = None, ("no region prices" if regions else "no rates")
    section = regions.get(chosen, {}) if chosen else {}
    prices = {name: _rates(rates) for name, rates in section.items() if isinstance(rates, dict)}
    if data.get("free"):
        basis = "runs on this machine: nothing is billed"
    elif "reference_rates" in data:
        basis = (f"an existing cluster: requested capacity at the reference rates of {path.name}"
                 if data["reference_rates"] else f"an existing cluster: requested capacity, unpriced ({path.name} "
                                                 "gives no reference rates)")
    return PriceTable(cloud=str(data.get("cloud", target)), path=path, currency=str(data.get("currency", "USD")),
                      hours_per_month=float(data.get("hours_per_month", 730)), prices=prices, basis=basis,
                      read_on=section.get("read_on"), types=data.get("types") or {}, free=bool(data.get("free")),
                      reference_rates=_rates(data.get("reference_rates")))


# ------------------------------------------------------------------------------------------------ quantities

_UNITS = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def cpu_cores(value: Any) -> float:
    """A Kubernetes CPU quantity in cores ('250m' -> 0.25, '2' -> 2.0)."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def gib(value: Any) -> float:
    """A Kubernetes memory or storage quantity in GiB ('512Mi' -> 0.5, '20Gi' -> 20, '1G' -> 0.93)."""
    match = re.fullmatch(r"([0-9.]+)([kMGT]i?)?", str(value))
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or ""] / 2**30


# ------------------------------------------------------------------------------------------------ estimate

@dataclass
class Quote:
    """What a meter says of one resource."""

    status: str
    idle: float = 0.0
    peak: float = 0.0
    detail: str = ""
    rates: list[Rate] = field(default_factory=list)
    #: requested capacity (Kubernetes): name -> (idle, peak); vcpu, memory_gib, volume_gib.
    requests: dict[str, tuple[float, float]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


@dataclass
class Line:
    """One resource of the estimate."""

    urn: str
    type: str
    name: str
    component: str
    quote: Quote

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types."""
        q = self.quote
        out: dict[str, Any] = {"urn": self.urn, "type": self.type, "name": self.name, "component": self.component,
                               "status": q.status, "idle": round(q.idle, 2), "peak": round(q.peak, 2),
                               "detail": q.detail}
        if q.requests:
            out["requests"] = {k: {"idle": round(i, 3), "peak": round(p, 3)} for k, (i, p) in q.requests.items()}
        if q.missing:
            out["missing"] = q.missing
        if q.rates:
            out["rates"] = [r.to_json() for r in q.rates]
        return out


@dataclass
class Context:
    """What meters may look at besides the resource: the table and the other resources."""

    table: PriceTable
    resources: list[dict[str, Any]]
    component: dict[str, str]

    def siblings(self, resource: dict[str, Any], type_: str) -> list[dict[str, Any]]:
        """Resources of `type_` in the same component as `resource`."""
        mine = self.component.get(resource["urn"])
        return [r for r in self.resources if r["type"] == type_ and self.component.get(r["urn"]) == mine]

    def monthly(self, hourly: float) -> float:
        """An hourly amount over the table's month."""
        return hourly * self.table.hours_per_month


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _need(ctx: Context, quote: Quote, table: str, key: str) -> Rate | None:
    rate = ctx.table.rate(table, key)
    if rate is None:
        quote.missing.append(f"{table}.{key}")
    elif rate not in quote.rates:
        quote.rates.append(rate)
    return rate


def _finish(quote: Quote, detail: str) -> Quote:
    if quote.missing:
        return Quote("unknown", detail=f"{detail}; not in the price table: {', '.join(quote.missing)}",
                     missing=quote.missing)
    quote.detail = detail
    return quote


def _sagemaker_endpoint(resource: dict[str, Any], ctx: Context) -> Quote:
    quote = Quote("priced")
    parts = []
    scaling = [t["inputs"] for t in ctx.siblings(resource, "aws:appautoscaling/target:Target")
               if t["inputs"].get("serviceNamespace") == "sagemaker"]
    for variant in resource["inputs"].get("productionVariants") or []:
        instance = str(variant.get("instanceType"))
        low = _num(variant.get("initialInstanceCount"), 1)
        high = low
        if scaling:
            low, high = _num(scaling[0].get("minCapacity"), low), _num(scaling[0].get("maxCapacity"), low)
        rate = _need(ctx, quote, "sagemaker_hosting_hour", instance)
        if rate is not None:
            quote.idle += ctx.monthly(rate.usd * low)
            quote.peak += ctx.monthly(rate.usd * high)
        parts.append(f"{instance} x {low:g}..{high:g}")
    return _finish(quote, ", ".join(parts) or "no production variant")


def _database(ctx: Context, quote: Quote, hourly: float | None, storage: Rate | None, *, allocated: float,
              ceiling: float, copies: int) -> None:
    """A provisioned database: its hourly compute all month plus storage, both billed on every copy (an HA
    standby is a second copy); idle at the allocated storage, peak at its growth ceiling."""
    if hourly is not None and storage is not None:
        monthly = ctx.monthly(hourly) * copies
        quote.idle = monthly + allocated * storage.usd * copies
        quote.peak = monthly + ceiling * storage.usd * copies


def _rds_instance(resource: dict[str, Any], ctx: Context) -> Quote:
    inputs = resource["inputs"]
    quote = Quote("priced")
    engine = str(inputs.get("engine", ""))
    if engine != "postgres":
        quote.missing.append(f"rds engine {engine!r}")
    copies = 2 if inputs.get("multiAz") else 1
    instance = _need(ctx, quote, "rds_postgres_hour", str(inputs.get("instanceClass")))
    storage_type = str(inputs.get("storageType") or "gp2")
    storage = _need(ctx, quote, "rds_storage_gb_month", storage_type)
    allocated = _num(inputs.get("allocatedStorage"))
    ceiling = max(allocated, _num(inputs.get("maxAllocatedStorage")))
    _database(ctx, quote, instance.usd if instance else None, storage, allocated=allocated, ceiling=ceiling,
              copies=copies)
    az = "Multi-AZ (primary and standby)" if copies == 2 else "Single-AZ"
    return _finish(quote, f"{inputs.get('instanceClass')} {az}, {allocated:g}..{ceiling:g} GB {storage_type}")


def _cloud_sql_instance(resource: dict[str, Any], ctx: Context) -> Quote:
    """Cloud SQL: a `db-custom-<vCPU>-<MiB>` tier billed per vCPU-hour and GB-hour of its edition, SSD/HDD per
    GB-month; REGIONAL availability bills a standby of the same shape."""
    settings = resource["inputs"].get("settings") or {}
    quote = Quote("priced")
    tier, edition = str(settings.get("tier")), str(settings.get("edition") or "ENTERPRISE")
    match = re.fullmatch(r"db-custom-(\d+)-(\d+)", tier)
    if not str(resource["inputs"].get("databaseVersion", "")).startswith("POSTGRES"):
        quote.missing.append(f"database version {resource['inputs'].get('databaseVersion')!r}")
    if match is None:
        quote.missing.append(f"cloud sql tier {tier!r} (only db-custom-<vCPU>-<MiB> tiers are metered)")
    vcpu, memory = (float(match.group(1)), float(match.group(2)) / 1024) if match else (0.0, 0.0)
    cpu_rate = _need(ctx, quote, "cloud_sql_vcpu_hour", edition)
    memory_rate = _need(ctx, quote, "cloud_sql_memory_gb_hour", edition)
    disk = str(settings.get("diskType") or "PD_SSD")
    storage = _need(ctx, quote, "cloud_sql_storage_gb_month", disk)
    allocated = _num(settings.get("diskSize"), 10)
    ceiling = max(allocated, _num(settings.get("diskAutoresizeLimit"))) if settings.get("diskAutoresize") else allocated
    copies = 2 if settings.get("availabilityType") == "REGIONAL" else 1
    hourly = vcpu * cpu_rate.usd + memory * memory_rate.usd if cpu_rate and memory_rate else None
    _database(ctx, quote, hourly, storage, allocated=allocated, ceiling=ceiling, copies=copies)
    ha = "REGIONAL (primary and standby)" if copies == 2 else "ZONAL"
    return _finish(quote, f"{tier} ({vcpu:g} vCPU / {memory:g} GB, {edition}) {ha}, {allocated:g}..{ceiling:g} GB "
                          f"{disk}")


def _postgres_flexible_server(resource: dict[str, Any], ctx: Context) -> Quote:
    """Azure Database for PostgreSQL flexible server: its SKU per hour and provisioned storage per GB-month; any
    high-availability mode bills a standby of the same SKU and storage."""
    inputs = resource["inputs"]
    quote = Quote("priced")
    sku = str((inputs.get("sku") or {}).get("name"))
    compute = _need(ctx, quote, "postgres_flexible_hour", sku)
    storage = _need(ctx, quote, "postgres_flexible_storage_gb_month", "premium_ssd")
    size = _num((inputs.get("storage") or {}).get("storageSizeGB"), 32)
    mode = str((inputs.get("highAvailability") or {}).get("mode") or "Disabled")
    copies = 1 if mode == "Disabled" else 2
    _database(ctx, quote, compute.usd if compute else None, storage, allocated=size, ceiling=size, copies=copies)
    grow = "; storage auto-grow is unbounded: the peak holds the provisioned size" \
        if (inputs.get("storage") or {}).get("autoGrow") == "Enabled" else ""
    return _finish(quote, f"{sku}, high availability {mode}, {size:g} GB{grow}")


def _fargate_service(resource: dict[str, Any], ctx: Context) -> Quote:
    inputs = resource["inputs"]
    quote = Quote("priced")
    family = str(inputs.get("taskDefinition", "")).rsplit("/", 1)[-1].split(":")[0]
    tasks = [r["inputs"] for r in ctx.resources if r["type"] == "aws:ecs/taskDefinition:TaskDefinition"
             and r["inputs"].get("family") == family]
    if not tasks:
        return Quote("unknown", detail=f"task definition {family!r} not found in the plan", missing=[family])
    task = tasks[0]
    arch = str((task.get("runtimePlatform") or {}).get("cpuArchitecture") or "X86_64")
    vcpu, memory = _num(task.get("cpu")) / 1024, _num(task.get("memory")) / 1024
    count = _num(inputs.get("desiredCount"), 1)
    cpu_rate = _need(ctx, quote, "fargate_vcpu_hour", arch)
    gb_rate = _need(ctx, quote, "fargate_gb_hour", arch)
    if cpu_rate is not None and gb_rate is not None:
        quote.idle = quote.peak = ctx.monthly(count * (vcpu * cpu_rate.usd + memory * gb_rate.usd))
    return _finish(quote, f"{count:g} task(s) of {vcpu:g} vCPU / {memory:g} GB ({arch})")


def _fee(ctx: Context, table: str, key: str, per: str, detail: str, count: float = 1.0) -> Quote:
    """A flat fee of `count` units at `table.key` per hour, day or month, the same idle and at peak."""
    quote = Quote("priced")
    rate = _need(ctx, quote, table, key)
    if rate is not None:
        months = {"hour": ctx.table.hours_per_month, "day": ctx.table.hours_per_month / 24, "month": 1.0}[per]
        quote.idle = quote.peak = rate.usd * count * months
    return _finish(quote, detail)


def _load_balancer(resource: dict[str, Any], ctx: Context) -> Quote:
    kind = str(resource["inputs"].get("loadBalancerType") or "application")
    return _fee(ctx, "load_balancer_hour", kind, "hour", f"{kind} load balancer-hours")


def _container_registry(resource: dict[str, Any], ctx: Context) -> Quote:
    sku = str((resource["inputs"].get("sku") or {}).get("name"))
    return _fee(ctx, "container_registry_day", sku, "day", f"{sku} registry, daily fee")


def _secret_versions(resource: dict[str, Any], ctx: Context) -> Quote:
    """Secret Manager: each active version of the secret, once per replica location (automatic replication
    is billed as one location)."""
    inputs = resource["inputs"]
    replicas = ((inputs.get("replication") or {}).get("userManaged") or {}).get("replicas") or []
    locations = len(replicas) or 1
    suffix = f"/secrets/{inputs.get('secretId')}"
    versions = sum(1 for r in ctx.resources if r["type"] == "gcp:secretmanager/secretVersion:SecretVersion"
                   and str(r["inputs"].get("secret", "")).endswith(suffix))
    return _fee(ctx, "secret_version_month", "active", "month",
                f"{versions} version(s) x {locations} location(s)", count=versions * locations)


def _serverless(ctx: Context, quote: Quote, vcpu: float, memory: float, low: float, high: float,
                idle: str, busy: str) -> None:
    """Instances billed per vCPU-second and GiB-second: `low` instances idle all month at the `idle` rates is
    the idle figure, `high` instances busy all month at the `busy` rates the peak."""
    rates = {key: (_need(ctx, quote, "vcpu_second", key), _need(ctx, quote, "gib_second", key))
             for key in dict.fromkeys((idle, busy))}
    if all(cpu is not None and mem is not None for cpu, mem in rates.values()):
        seconds = ctx.table.hours_per_month * 3600

        def month(count: float, key: str) -> float:
            cpu, mem = rates[key]
            assert cpu is not None and mem is not None
            return count * seconds * (vcpu * cpu.usd + memory * mem.usd)

        quote.idle, quote.peak = month(low, idle), month(high, busy)


def _cloud_run_service(resource: dict[str, Any], ctx: Context) -> Quote:
    """Cloud Run service: min instances idle, max instances busy; request-based billing (cpuIdle) has its own
    active and idle-instance rates, instance-based billing one rate for the whole instance lifetime."""
    template = resource["inputs"].get("template") or {}
    scaling = template.get("scaling") or {}
    containers = template.get("containers") or []
    limits = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    vcpu = sum(cpu_cores(x.get("cpu", 1)) for x in limits)
    memory = sum(gib(x.get("memory", "512Mi")) for x in limits)
    request_based = all((c.get("resources") or {}).get("cpuIdle", True) for c in containers)
    low = _num(scaling.get("minInstanceCount"))
    quote = Quote("priced")
    if "maxInstanceCount" not in scaling:
        quote.missing.append("a maximum instance count (the service's peak)")
    high = _num(scaling.get("maxInstanceCount"), low)
    idle, busy = ("request_idle", "request_active") if request_based else ("instance", "instance")
    _serverless(ctx, quote, vcpu, memory, low, high, idle, busy)
    billing = "request-based" if request_based else "instance-based"
    return _finish(quote, f"{low:g}..{high:g} instance(s) of {vcpu:g} vCPU / {memory:g} GiB, {billing} billing")


def _container_app(resource: dict[str, Any], ctx: Context) -> Quote:
    """Azure Container Apps (Consumption): min replicas at the idle rates, max replicas at the active rates."""
    template = resource["inputs"].get("template") or {}
    scale = template.get("scale") or {}
    resources = [c.get("resources") or {} for c in template.get("containers") or []]
    vcpu = sum(_num(r.get("cpu"), 0.5) for r in resources)
    memory = sum(gib(str(r.get("memory", "1Gi")).replace(".0Gi", "Gi")) for r in resources)
    low = _num(scale.get("minReplicas"))
    quote = Quote("priced")
    if "maxReplicas" not in scale:
        quote.missing.append("a maximum replica count (the app's peak)")
    high = _num(scale.get("maxReplicas"), low)
    _serverless(ctx, quote, vcpu, memory, low, high, "idle", "active")
    return _finish(quote, f"{low:g}..{high:g} replica(s) of {vcpu:g} vCPU / {memory:g} GiB; idle rates apply "
                          "only while a replica serves nothing")


def _gke_node_pool(resource: dict[str, Any], ctx: Context) -> Quote:
    """GKE node pool: its nodes' machine type per hour (spot at the spot rate) and boot disk per GB-month, at
    the autoscaler's total minimum (idle) and maximum (peak) node counts."""
    inputs = resource["inputs"]
    config = inputs.get("nodeConfig") or {}
    auto = inputs.get("autoscaling") or {}
    quote = Quote("priced")
    zones = len(inputs.get("nodeLocations") or [])
    if "totalMinNodeCount" in auto or "totalMaxNodeCount" in auto:
        low, high = _num(auto.get("totalMinNodeCount")), _num(auto.get("totalMaxNodeCount"))
    elif zones:
        per_zone = _num(inputs.get("nodeCount"), _num(inputs.get("initialNodeCount"), 1))
        low = _num(auto.get("minNodeCount"), per_zone) * zones
        high = _num(auto.get("maxNodeCount"), per_zone) * zones
    else:
        low = high = 0.0
        quote.missing.append("node counts (per-zone counts without nodeLocations: the zones are not known)")
    machine = str(config.get("machineType") or "e2-medium")
    spot = bool(config.get("spot") or config.get("preemptible"))
    compute = _need(ctx, quote, "compute_spot_hour" if spot else "compute_hour", machine)
    disk_type, disk_size = str(config.get("diskType") or "pd-balanced"), _num(config.get("diskSizeGb"), 100)
    disk = _need(ctx, quote, "persistent_disk_gb_month", disk_type)
    if compute is not None and disk is not None:
        node = ctx.monthly(compute.usd) + disk_size * disk.usd
        quote.idle, quote.peak = low * node, high * node
    return _finish(quote, f"{low:g}..{high:g} {'spot ' if spot else ''}{machine} node(s), {disk_size:g} GB "
                          f"{disk_type} each")


def _vpc_endpoint(resource: dict[str, Any], ctx: Context) -> Quote:
    inputs = resource["inputs"]
    if str(inputs.get("vpcEndpointType", "Gateway")) == "Gateway":
        return Quote("none", detail="gateway endpoint: no charge")
    zones = len(inputs.get("subnetIds") or []) or 1
    return _fee(ctx, "vpc_interface_endpoint_az_hour", "interface", "hour", f"interface endpoint in {zones} AZ(s)",
                count=zones)


def _priced_unknown(resource: dict[str, Any], ctx: Context) -> Quote:
    return Quote("unknown", detail="no sourced price", missing=[resource["type"]])


def _pod_requests(resource: dict[str, Any], ctx: Context) -> Quote:
    spec = resource["inputs"].get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    name = (resource["inputs"].get("metadata") or {}).get("name", resource["name"])
    low = high = _num(spec.get("replicas"), 1)
    for hpa in ctx.siblings(resource, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"):
        hpa_spec = hpa["inputs"].get("spec") or {}
        if (hpa_spec.get("scaleTargetRef") or {}).get("name") == name:
            low, high = _num(hpa_spec.get("minReplicas"), 1), _num(hpa_spec.get("maxReplicas"), low)

    def effective(key: str, parse: Callable[[Any], float]) -> float:
        def of(containers: list[dict[str, Any]]) -> list[float]:
            return [parse(((c.get("resources") or {}).get("requests") or {}).get(key, 0)) for c in containers]
        return max(sum(of(pod.get("containers") or [])), max(of(pod.get("initContainers") or []), default=0.0))

    vcpu, memory = effective("cpu", cpu_cores), effective("memory", gib)
    volumes = sum(gib(((t.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", 0))
                  for t in spec.get("volumeClaimTemplates") or [])
    requests = {"vcpu": (vcpu * low, vcpu * high), "memory_gib": (memory * low, memory * high)}
    if volumes:
        requests["volume_gib"] = (volumes * low, volumes * high)
    return _priced_requests(ctx, requests, f"{low:g}..{high:g} replica(s) of {vcpu:g} vCPU / {memory:g} GiB")


def _volume_claim(resource: dict[str, Any], ctx: Context) -> Quote:
    size = gib(((resource["inputs"].get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", 0))
    return _priced_requests(ctx, {"volume_gib": (size, size)}, f"{size:g} GiB volume")


#: Kubernetes requested capacity -> (reference rate name, hours it is billed per month or 1 for monthly rates).
_REQUEST_RATES = {"vcpu": ("vcpu_hour", True), "memory_gib": ("gib_hour", True), "volume_gib": ("volume_gib_month",
                                                                                                False)}


def _priced_requests(ctx: Context, requests: dict[str, tuple[float, float]], detail: str) -> Quote:
    """Requested capacity; priced only when the table gives reference rates for every part of it."""
    rates = {k: ctx.table.reference_rates.get(_REQUEST_RATES[k][0]) for k in requests}
    if not requests or any(r is None for r in rates.values()):
        return Quote("requests", detail=f"{detail}; no reference rate: the cluster's price is not known here",
                     requests=requests)
    quote = Quote("priced", detail=f"{detail} at reference rates", requests=requests)
    for key, (low, high) in requests.items():
        rate = rates[key]
        assert rate is not None
        scale = ctx.table.hours_per_month if _REQUEST_RATES[key][1] else 1.0
        quote.idle += low * rate.usd * scale
        quote.peak += high * rate.usd * scale
        quote.rates.append(rate)
    return quote


#: Meter name (a price table's `types.<type>.meter`) -> how a resource of that type is priced.
METERS: dict[str, Callable[[dict[str, Any], Context], Quote]] = {
    "sagemaker_endpoint": _sagemaker_endpoint,
    "rds_instance": _rds_instance,
    "fargate_service": _fargate_service,
    "load_balancer": _load_balancer,
    "kms_key": lambda resource, ctx: _fee(ctx, "kms_key_month", "customer_managed", "month",
                                          "one customer managed key"),
    "kms_key_version": lambda resource, ctx: _fee(ctx, "kms_key_version_month", "software", "month",
                                                  "one active key version"),
    "scheduler_job": lambda resource, ctx: _fee(ctx, "scheduler_job_month", "job", "month", "one job"),
    "gke_cluster": lambda resource, ctx: _fee(ctx, "gke_cluster_hour", "standard", "hour",
                                              "cluster management fee"),
    "private_endpoint": lambda resource, ctx: _fee(ctx, "private_endpoint_hour", "endpoint", "hour",
                                                   "one private endpoint"),
    "container_registry": _container_registry,
    "secret_versions": _secret_versions,
    "cloud_sql_instance": _cloud_sql_instance,
    "postgres_flexible_server": _postgres_flexible_server,
    "cloud_run_service": _cloud_run_service,
    "container_app": _container_app,
    "gke_node_pool": _gke_node_pool,
    "vpc_endpoint": _vpc_endpoint,
    "priced_unknown": _priced_unknown,
    "pod_requests": _pod_requests,
    "volume_claim": _volume_claim,
    "none": lambda resource, ctx: Quote("none"),
    "usage": lambda resource, ctx: Quote("usage"),
}


def is_component(type_: str) -> bool:
    """Component resources (shipyard's own) and providers are not billed resources."""
    return type_.startswith(("shipyard:", "pulumi:providers:"))


def components(resources: list[dict[str, Any]]) -> dict[str, str]:
    """URN -> the label of the nearest enclosing shipyard component ('ServingEndpoint shipyard-dev-churn-serving')."""
    by_urn = {r["urn"]: r for r in resources}
    out: dict[str, str] = {}
    for resource in resources:
        parent = by_urn.get(resource.get("parent", ""))
        while parent is not None and not parent["type"].startswith("shipyard:"):
            parent = by_urn.get(parent.get("parent", ""))
        out[resource["urn"]] = f"{parent['type'].rsplit(':', 1)[-1]} {parent['name']}" if parent else "(stack)"
    return out


@dataclass
class Estimate:
    """A stack's monthly estimate."""

    stack: str
    target: str
    region: str | None
    table: PriceTable
    lines: list[Line]

    def total(self, which: str) -> float:
        """The sum of priced resources, 'idle' or 'peak'."""
        return sum(getattr(line.quote, which) for line in self.lines if line.quote.status == "priced")

    def by_status(self, status: str) -> dict[str, int]:
        """Resource type -> count, of one status."""
        counts: dict[str, int] = defaultdict(int)
        for line in self.lines:
            if line.quote.status == status:
                counts[line.type] += 1
        return dict(sorted(counts.items()))

    def requests(self) -> dict[str, tuple[float, float]]:
        """Requested capacity summed over the stack (Kubernetes)."""
        sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for line in self.lines:
            for key, (low, high) in line.quote.requests.items():
                sums[key][0] += low
                sums[key][1] += high
        return {k: (v[0], v[1]) for k, v in sorted(sums.items())}

    def per_component(self) -> dict[str, tuple[float, float]]:
        """Component -> (idle, peak) of its priced resources."""
        sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for line in self.lines:
            sums[line.component][0] += line.quote.idle
            sums[line.component][1] += line.quote.peak
        return {k: (v[0], v[1]) for k, v in sorted(sums.items())}

    @property
    def complete(self) -> bool:
        """Whether every resource is priced, free or usage-only (nothing unknown, no unpriced requests)."""
        return not any(line.quote.status in ("unknown", "requests") for line in self.lines)

    def summary(self) -> str:
        """One line: the totals, what is left out, and the basis."""
        cur = self.table.currency
        if self.table.free:
            return f"cost: 0 {cur}/month (local: {self.table.basis})"
        unpriced = self.by_status("requests") or self.by_status("unknown")
        if any(line.quote.status == "priced" for line in self.lines) or not unpriced:
            text = f"cost: {self.total('idle'):,.2f} {cur}/month idle, {self.total('peak'):,.2f} at maximum scale"
        else:
            text = "cost: not priced"
        extras = []
        unknown = sum(self.by_status("unknown").values())
        if unknown:
            extras.append(f"{unknown} resource(s) unknown")
        usage = sum(self.by_status("usage").values())
        if usage:
            extras.append(f"{usage} usage-billed not included")
        requests = self.requests()
        if requests and self.by_status("requests"):
            vcpu, mem = requests.get("vcpu", (0, 0)), requests.get("memory_gib", (0, 0))
            extras.append(f"requests {vcpu[0]:.2f}..{vcpu[1]:.2f} vCPU, {mem[0]:.2f}..{mem[1]:.2f} GiB unpriced")
        date = f", prices read {self.table.read_on}" if self.table.read_on else ""
        return f"{text} ({'; '.join([*extras, self.table.basis])}{date})"

    def to_json(self) -> dict[str, Any]:
        """The object `cost --json` prints (and `plan --json` under `cost`)."""
        return {
            "stack": self.stack, "target": self.target, "region": self.region, "currency": self.table.currency,
            "basis": self.table.basis, "table": str(self.table.path.name) if self.table.path else None,
            "prices_read_on": self.table.read_on, "hours_per_month": self.table.hours_per_month,
            "idle": round(self.total("idle"), 2), "peak": round(self.total("peak"), 2),
            "complete": self.complete, "summary": self.summary(),
            "components": {k: {"idle": round(i, 2), "peak": round(p, 2)} for k, (i, p) in self.per_component().items()},
            "unknown": self.by_status("unknown"), "usage": self.by_status("usage"),
            "requests": {k: {"idle": round(i, 3), "peak": round(p, 3)} for k, (i, p) in self.requests().items()},
            "resources": [line.to_json() for line in self.lines],
        }


def estimate(resources: list[dict[str, Any]], *, stack: str, target: str, region: str | None,
             table: PriceTable) -> Estimate:
    """Price every non-component resource of a plan with `table`."""
    ctx = Context(table, resources, components(resources))
    lines = []
    for resource in sorted(resources, key=lambda r: r["urn"]):
        if is_component(resource["type"]):
            continue
        if table.free:
            quote = Quote("none", detail=table.basis)
        else:
            entry = table.types.get(resource["type"])
            meter = METERS.get(entry.get("meter", "")) if entry else None
            if meter is None:
                quote = Quote("unknown", detail=f"type not in {table.path.name if table.path else 'a price table'}",
                              missing=[resource["type"]])
            else:
                quote = meter(resource, ctx)
                note = entry.get("note") if entry else None
                if note:
                    quote.detail = f"{quote.detail}; {note}" if quote.detail else note
        lines.append(Line(resource["urn"], resource["type"], resource["name"], ctx.component[resource["urn"]], quote))
    return Estimate(stack=stack, target=target, region=region, table=table, lines=lines)


def estimate_plan(plan: Any, prices_dir: Path = PRICES_DIR) -> Estimate:
    """The estimate of an `infra.plan.Plan`."""
    region = plan.outputs.get("region") if isinstance(plan.outputs.get("region"), str) else None
    return estimate(plan.resources, stack=plan.stack, target=plan.target, region=region,
                    table=load_prices(plan.target, region, prices_dir))


def render(est: Estimate) -> str:
    """The human-readable estimate: per component, per resource, what is unknown or usage-billed, the sources."""
    cur = est.table.currency
    lines = [f"Monthly estimate of stack {est.stack} ({est.target}, {est.region or 'no region'}), {cur}: "
             f"{est.table.basis}", ""]
    for component, (idle, peak) in est.per_component().items():
        lines.append(f"{component}: {idle:,.2f} idle, {peak:,.2f} at maximum scale")
        for line in (x for x in est.lines if x.component == component and x.quote.status != "none"):
            q = line.quote
            amount = f"{q.idle:,.2f} .. {q.peak:,.2f}" if q.status == "priced" else q.status
            lines.append(f"  {line.type}  {line.name}: {amount}" + (f"  ({q.detail})" if q.detail else ""))
    free = sum(est.by_status("none").values())
    lines += ["", f"{free} resource(s) carry no charge of their own."]
    for status, title in (("usage", "Billed by use only (not in the totals)"),
                          ("unknown", "Unknown (not in the price table: not guessed)")):
        counts = est.by_status(status)
        if counts:
            lines += [f"{title}:", *(f"  {t} x{n}" for t, n in counts.items())]
    sources = {(r.source, r.date) for line in est.lines for r in line.quote.rates}
    if sources:
        lines += ["Prices from" + (f" (read {est.table.read_on})" if est.table.read_on else "") + ":",
                  *(f"  {s} ({d})" for s, d in sorted(sources))]
    lines += ["", est.summary()]
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    """`shipyard cost --stack S [--json]`: the estimate from the offline plan; exit 1 if the plan fails."""
    from infra.plan import PlanError, build_plan

    try:
        plan = build_plan(args.stack, args.config)
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    est = estimate_plan(plan)
    print(json.dumps(est.to_json()) if args.json else render(est))
    return 0
