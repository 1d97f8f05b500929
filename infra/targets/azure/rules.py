"""What the Azure target refuses (`check`) and what it does not honour (`ignored`): pure, no SDK.

With `azure.compute: kubernetes` (the AKS cluster profile) the region, name and network rules still hold; the rest
are the Kubernetes target's (`infra.targets.cluster`) and AKS's own (GPU VM sizes, address ranges).
"""

from __future__ import annotations

import re

from infra.problems import Notice, Problem
from infra.spec import PlatformSpec
from infra.targets import cluster
from infra.targets.azure import aks_facts, layout
from infra.targets.azure.names import RULES
from infra.targets.azure.sizes import GPU_REGIONS, GPU_VM_SIZES, GPUS_PER_REPLICA, backup_days, postgres_storage_gb
from infra.targets.baseline import changed

#: Azure public-cloud regions by their programmatic name (what `az account list-locations` calls `name`).
REGIONS = frozenset({
    "eastus", "eastus2", "centralus", "northcentralus", "southcentralus", "westcentralus", "westus", "westus2",
    "westus3", "canadacentral", "canadaeast", "brazilsouth", "brazilsoutheast", "mexicocentral", "chilecentral",
    "northeurope", "westeurope", "uksouth", "ukwest", "francecentral", "francesouth", "germanywestcentral",
    "germanynorth", "switzerlandnorth", "switzerlandwest", "norwayeast", "norwaywest", "swedencentral",
    "swedensouth", "polandcentral", "italynorth", "spaincentral", "austriaeast", "belgiumcentral",
    "australiaeast", "australiasoutheast", "australiacentral", "australiacentral2", "eastasia", "southeastasia",
    "japaneast", "japanwest", "koreacentral", "koreasouth", "centralindia", "southindia", "westindia",
    "jioindiawest", "jioindiacentral", "indonesiacentral", "malaysiawest", "newzealandnorth", "uaenorth",
    "uaecentral", "qatarcentral", "israelcentral", "southafricanorth", "southafricawest",
})
#: An existing VNet: its full resource id.
VNET_ID = re.compile(r"^/subscriptions/(?P<subscription>[0-9a-fA-F-]{36})/resourceGroups/(?P<group>[-\w._()]{1,90})"
                     r"/providers/Microsoft\.Network/virtualNetworks/(?P<name>[-\w._]{2,64})$", re.IGNORECASE)
#: A Key Vault secret's URI (what `{ref: ...}` names on Azure), optionally with a version.
KEY_VAULT_SECRET = re.compile(r"^https://[a-z][a-z0-9-]{1,22}[a-z0-9]\.vault\.azure\.net/secrets/[-a-zA-Z0-9]{1,127}"
                              r"(/[0-9a-f]{32})?/?$")


def region_problems(region: str | None) -> list[Problem]:
    """A region Azure knows by its programmatic name; a display name is named as the mistake it is."""
    if region is None or region in REGIONS:
        return []
    squeezed = region.replace(" ", "").lower()
    if squeezed in REGIONS:
        return [Problem.at("region", f"{region!r} is a display name; the region is {squeezed!r}")]
    return [Problem.at("region", f"{region!r} is not an Azure region (e.g. 'westeurope', 'eastus2')")]


def _gpu_problems(spec: PlatformSpec) -> list[Problem]:
    """GPU sizes need a region with serverless GPUs, and get one GPU per replica."""
    keys = ["training.size"] if spec.training.size == "gpu" else []
    keys += [f"models[{i}].serving.size" for i, m in enumerate(spec.models) if m.serving.size == "gpu"]
    problems = []
    if spec.region not in GPU_REGIONS:
        problems += [Problem.at(key, (
            f"'gpu' needs a Container Apps serverless GPU region ({', '.join(sorted(GPU_REGIONS))}); "
            f"{spec.region!r} has none")) for key in keys]
    if spec.training.gpu_count > GPUS_PER_REPLICA:
        problems.append(Problem.at("training.gpu_count", (
            f"{spec.training.gpu_count} GPUs: a Container Apps serverless GPU replica has {GPUS_PER_REPLICA}")))
    return problems


def _reference_problems(spec: PlatformSpec) -> list[Problem]:
    problems = []
    external = spec.registry.database.external_url
    if external is not None and external.ref is not None and not KEY_VAULT_SECRET.match(external.ref):
        problems.append(Problem.at("registry.database.external_url.ref", (
            f"{external.ref!r} must be a Key Vault secret URI holding the URL "
            "('https://<vault>.vault.azure.net/secrets/<name>')")))
    for i, model in enumerate(spec.models):
        for j, alert in enumerate(model.monitoring.alerts):
            if alert.url is not None and alert.url.ref is not None:
                problems.append(Problem.at(f"models[{i}].monitoring.alerts[{j}].url.ref", (
                    "an Azure Monitor action group needs the webhook URL itself: give it as a Pulumi secret "
                    "(`pulumi config set --secret`), not a reference")))
    return problems


def name_problems(spec: PlatformSpec) -> list[Problem]:
    """Every name this target derives from the spec, checked against Azure's rule for its kind."""
    return [Problem.at(key, f"derived {kind} name {name!r} breaks Azure's rule for it")
            for key, (kind, name) in layout.generated_names(spec).items() if not RULES[kind].accepts(name)]


def _aks_problems(spec: PlatformSpec) -> list[Problem]:
    """What AKS refuses: a GPU count no T4 VM has, a VNet overlapping the cluster's pod or Service range."""
    problems = []
    if spec.training.size == "gpu" and spec.training.gpu_count not in GPU_VM_SIZES:
        problems.append(Problem.at("training.gpu_count", (
            f"AKS's T4 node sizes carry {', '.join(map(str, GPU_VM_SIZES))} GPUs; got {spec.training.gpu_count}")))
    overlaps = aks_facts.range_overlaps(spec.azure_settings.vnet_cidr)
    if overlaps:
        problems.append(Problem.at("azure.vnet_cidr", (
            f"{spec.azure_settings.vnet_cidr!r} overlaps the cluster's pod or Service range ({', '.join(overlaps)}); "
            "pick another private range")))
    return problems


def check(spec: PlatformSpec) -> list[Problem]:
    """Everything in `spec` the Azure target refuses, located by key path."""
    problems = region_problems(spec.region) + name_problems(spec) + _network_problems(spec)
    if cluster.on_cluster(spec):
        return problems + _aks_problems(spec) + cluster.check(spec)
    problems += _gpu_problems(spec) + _reference_problems(spec)
    for i, model in enumerate(spec.models):
        if model.serving.public:
            problems.append(Problem.at(f"models[{i}].serving.public", (
                "is not supported on target 'azure': the platform's Container Apps environment is internal to "
                "its VNet; publish an endpoint through your own Application Gateway or Front Door, or set "
                "serving.public: false")))
    return problems


def _network_problems(spec: PlatformSpec) -> list[Problem]:
    network = spec.networking.existing_network
    if network is not None and not VNET_ID.match(network):
        return [Problem.at("networking.existing_network", (
            f"{network!r} is not a VNet resource id ('/subscriptions/<id>/resourceGroups/<group>/providers/"
            "Microsoft.Network/virtualNetworks/<name>')"))]
    return []


#: Platform-level keys the Azure target does not use -> what happens instead.
_PLATFORM: dict[str, str] = {
    "networking.private": ("not used: the Container Apps environment, the database, storage, Key Vault and the "
                           "registry are always private to the VNet on Azure"),
    "training.min_nodes": "not used: each scheduled Container Apps job execution runs one replica",
    "training.max_nodes": "not used: each scheduled Container Apps job execution runs one replica",
    "training.spot": "not used: Container Apps has no spot capacity; jobs run on the Consumption profile",
    **{f"registry.artifacts.{key}": "not used: artifacts live in this stack's storage account (wasbs://)"
       for key in ("s3_endpoint", "bucket", "s3_credentials")},
}


def ignored(spec: PlatformSpec) -> list[Notice]:
    """Every setting of `spec` the Azure target does not honour, with what happens instead."""
    if cluster.on_cluster(spec):
        return cluster.ignored(spec)
    notices = [Notice(key, _PLATFORM[key]) for key in changed(spec, *_PLATFORM)]
    database = spec.registry.database
    written = set(changed(spec, "registry.database.backup_retention_days", "registry.database.storage_gb"))
    if database.external_url is None:  # defaults nobody wrote are adjusted silently (dev's 1 day, 20 GiB)
        if ("registry.database.backup_retention_days" in written
                and backup_days(database.backup_retention_days) != database.backup_retention_days):
            notices.append(Notice("registry.database.backup_retention_days", (
                f"{database.backup_retention_days} becomes {backup_days(database.backup_retention_days)}: "
                "PostgreSQL Flexible Server keeps backups 7 to 35 days")))
        storage_gb = database.storage_gb
        if "registry.database.storage_gb" in written and postgres_storage_gb(storage_gb) != storage_gb:
            notices.append(Notice("registry.database.storage_gb", (
                f"{database.storage_gb} is rounded up to {postgres_storage_gb(database.storage_gb)} GiB, the next "
                "storage size PostgreSQL Flexible Server offers")))
    for i, model in enumerate(spec.models):
        serving = model.serving
        if serving.auth == "iam":
            notices.append(Notice(f"models[{i}].serving.auth", (
                "'iam' is not enforced by the Azure target: the endpoint is reachable only inside the VNet; add "
                "Entra ID authentication (a Container Apps auth config) with your own app registration")))
        if serving.rollout.strategy != "rolling":
            notices.append(Notice(f"models[{i}].serving.rollout.strategy", (
                f"'{serving.rollout.strategy}' keeps several revisions: each new one starts with no traffic beside "
                "the serving one (the first deploy's, labelled 'stable'); shifting traffic to it is `az containerapp "
                "ingress traffic set` (docs/azure.md, 'Rollouts'), not automatic")))
    return notices
