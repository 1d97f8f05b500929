"""Every name the Azure target derives from the spec, in one place: the program and `check` both use it.

Pure: no SDK. Global names (storage account, Key Vault, registry, PostgreSQL server) take the subscription
id, known only when the program runs; `generated_names` checks them with a placeholder subscription, which
yields the same length and characters.
"""

from __future__ import annotations

from infra.spec import PlatformSpec
from infra.targets.azure.names import azure_name, global_name

#: Blob containers of the platform's storage account, by purpose; workloads get roles per container.
CONTAINERS = {
    "mlflow": "mlflow",          # MLflow artifacts (wasbs://mlflow@<account>.blob.core.windows.net/)
    "packages": "packages",      # the pipelines wheel and the run configurations, content-addressed
    "inference": "inference",    # serving's inference logs, read by the monitor
    "reports": "reports",        # the monitor's drift reports
    "data": "data",              # datasets the platform's jobs may read
}
_PLACEHOLDER_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def resource_group(spec: PlatformSpec) -> str:
    """The platform's resource group."""
    return azure_name(spec.prefix, "rg", kind="resource_group")


def network(spec: PlatformSpec) -> str:
    """The platform's VNet (when it creates one)."""
    return azure_name(spec.prefix, "vnet", kind="network")


def environment(spec: PlatformSpec) -> str:
    """The Container Apps environment."""
    return azure_name(spec.prefix, "apps", kind="environment")


def mlflow_app(spec: PlatformSpec) -> str:
    """The MLflow tracking server's Container App."""
    return azure_name(spec.prefix, "mlflow", kind="container_app")


def serving_app(spec: PlatformSpec, model: str) -> str:
    """A model's serving Container App."""
    return azure_name(spec.prefix, model, kind="container_app")


def training_job(spec: PlatformSpec, model: str) -> str:
    """A model's scheduled training job."""
    return azure_name(spec.prefix, "train", model, kind="container_app")


def monitor_job(spec: PlatformSpec, model: str) -> str:
    """A model's scheduled drift job."""
    return azure_name(spec.prefix, "drift", model, kind="container_app")


def identity(spec: PlatformSpec, workload: str) -> str:
    """The user-assigned managed identity of one workload."""
    return azure_name(spec.prefix, workload, "id", kind="identity")


def aks_cluster(spec: PlatformSpec) -> str:
    """The AKS cluster (the cluster profile)."""
    return azure_name(spec.prefix, "aks", kind="cluster")


def aks_dns_prefix(spec: PlatformSpec) -> str:
    """The AKS cluster's DNS prefix (the API server's host name starts with it)."""
    return azure_name(spec.prefix, "aks", kind="dns_prefix")


def node_resource_group(spec: PlatformSpec) -> str:
    """The resource group AKS keeps the nodes' VM scale sets, disks and load balancer in."""
    return azure_name(spec.prefix, "aks", "nodes", kind="resource_group")


def workspace(spec: PlatformSpec) -> str:
    """The Log Analytics workspace."""
    return azure_name(spec.prefix, "logs", kind="workspace")


def action_group_short(spec: PlatformSpec, model: str) -> str:
    """An action group's short name (what e-mails and SMS show): 12 letters and digits at most."""
    return azure_name("sy", model, kind="action_group_short")


def storage_account(spec: PlatformSpec, subscription: str) -> str:
    """The artifact and platform storage account (global)."""
    return global_name(spec.prefix, "artifacts", subscription, kind="storage")


def key_vault(spec: PlatformSpec, subscription: str) -> str:
    """The platform's Key Vault (global)."""
    return global_name(spec.prefix, "kv", subscription, kind="key_vault")


def registry(spec: PlatformSpec, subscription: str) -> str:
    """The container registry holding the runtime image (global)."""
    return global_name(spec.prefix, "acr", subscription, kind="registry")


def postgres(spec: PlatformSpec, subscription: str) -> str:
    """The registry's PostgreSQL Flexible Server (global)."""
    return global_name(spec.prefix, "mlflow", subscription, kind="postgres")


def generated_names(spec: PlatformSpec) -> dict[str, tuple[str, str]]:
    """Every name derived from the spec: key path that drives it (plus the name) -> (kind, name); on the AKS
    cluster profile the cluster's and the shared resources' (no Container Apps, vault or action groups)."""
    sub = _PLACEHOLDER_SUBSCRIPTION
    names: dict[str, tuple[str, str]] = {}
    if spec.compute == "kubernetes":
        for kind, name in (("resource_group", resource_group(spec)), ("network", network(spec)),
                           ("workspace", workspace(spec)), ("storage", storage_account(spec, sub)),
                           ("registry", registry(spec, sub)), ("postgres", postgres(spec, sub)),
                           ("identity", identity(spec, "kubelet")), ("cluster", aks_cluster(spec)),
                           ("dns_prefix", aks_dns_prefix(spec)), ("resource_group", node_resource_group(spec))):
            names[f"name ({name})"] = (kind, name)
        return names
    for kind, name in (("resource_group", resource_group(spec)), ("network", network(spec)),
                       ("environment", environment(spec)), ("container_app", mlflow_app(spec)),
                       ("workspace", workspace(spec)), ("storage", storage_account(spec, sub)),
                       ("key_vault", key_vault(spec, sub)), ("registry", registry(spec, sub)),
                       ("postgres", postgres(spec, sub)), ("identity", identity(spec, "training"))):
        names[f"name ({name})"] = (kind, name)
    for i, model in enumerate(spec.models):
        for kind, name in (("container_app", serving_app(spec, model.name)),
                           ("container_app", training_job(spec, model.name)),
                           ("container_app", monitor_job(spec, model.name)),
                           ("identity", identity(spec, f"{model.name}-serving")),
                           ("action_group_short", action_group_short(spec, model.name))):
            names[f"models[{i}].name ({name})"] = (kind, name)
    return names
