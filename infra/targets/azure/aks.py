"""The AKS cluster profile (`azure.compute: kubernetes`): an AKS cluster in the foundation's VNet, running the
Kubernetes target's workloads unchanged through the cluster's own provider.

- `AksCluster` (`shipyard:azure:Cluster`): the control plane's and the kubelet's user-assigned identities (the
  control plane may join the nodes' subnet and hand the kubelet identity to the nodes; the kubelet may pull from
  the platform's registry, nothing else), the cluster (Azure CNI overlay with Cilium enforcing the workloads'
  NetworkPolicies, OIDC issuer and workload identity, Entra ID with Azure RBAC and no local accounts, the API
  server limited to `networking.allowed_cidrs`, the `stable` upgrade channel, the system pool inline), the
  training pools of `aks_facts.pool_plans` (cluster autoscaler, from zero), the deployer's cluster-admin role,
  the control plane's audit logs to Log Analytics, and the Kubernetes provider from the cluster's kubeconfig.
- `ClusterBackends` (`shipyard:azure:ClusterBackends`): the storage account with the MLflow container, PostgreSQL
  Flexible Server (unless the spec gives an external database), and the tracking server's workload identity: a
  user-assigned identity federated with its Kubernetes ServiceAccount, allowed to write the MLflow container. No
  other workload gets an Azure identity (they reach artifacts through MLflow's proxy and expose metrics to
  Prometheus); pods never see the kubelet's identity.
- `build_cluster`: the foundation, the cluster, the backends, then `kubernetes.program.build_workloads` with the
  profile's hooks (`infra.targets.kubernetes.profile.ClusterProfile`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

import pulumi
import pulumi_azure_native
import pulumi_kubernetes
import yaml
from pulumi_azure_native import authorization, containerservice, managedidentity, monitor

from infra.image import ImagePlan
from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets import cluster as cluster_rules
from infra.targets.azure import aks_facts, iam, layout
from infra.targets.azure.foundation import Foundation
from infra.targets.azure.registry import artifact_storage, postgres_server, stateful
from infra.targets.base import TargetResources
from infra.targets.kubernetes import layout as k8s_layout
from infra.targets.kubernetes.profile import ClusterProfile, pool_placement
from infra.targets.kubernetes.program import build_workloads
from pipelines.adapters.azure import artifact_uri

#: The ServiceAccount annotation naming the identity a pod's token is exchanged for, and the pod label that
#: makes AKS's workload identity webhook project that token into the pod.
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
USE_LABEL = ("azure.workload.identity/use", "true")
#: The audience AKS's workload identity tokens carry (Entra ID's token exchange).
TOKEN_AUDIENCE = "api://AzureADTokenExchange"
#: Ports the tracking server's pods call for the blob container: Entra ID's token endpoint and the storage
#: account's private endpoint, both HTTPS (workload identity needs no node metadata endpoint).
ARTIFACT_PORTS = (443,)
#: The Entra ID application of AKS's API server: kubelogin asks tokens for it.
AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"
#: Components of the Kubernetes target that run on the system pool (training has its own pools).
#: Control-plane log categories kept in Log Analytics: who changed what, the autoscaler's decisions, Entra checks.
AUDIT_LOGS = ("kube-audit-admin", "cluster-autoscaler", "guard")


def kubeconfig(encoded: str) -> str:
    """The cluster's user kubeconfig (base64, as AKS lists it) with every user authenticating through
    `kubelogin` and the Azure CLI's login (no credential inside)."""
    config = yaml.safe_load(base64.b64decode(encoded))
    exec_user = {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "kubelogin",
        "args": ["get-token", "--login", "azurecli", "--server-id", AKS_SERVER_APP],
        "installHint": "az aks install-cli (installs kubelogin)", "provideClusterInfo": False,
        "interactiveMode": "Never"}}
    config["users"] = [{"name": user["name"], "user": exec_user} for user in config.get("users") or []]
    return json.dumps(config, indent=2)



def service_account_subject(namespace: str, account: str) -> str:
    """The subject of a Kubernetes ServiceAccount's tokens (what a federated credential trusts)."""
    return f"system:serviceaccount:{namespace}:{account}"


class AksCluster(pulumi.ComponentResource):
    """The AKS cluster, its pools and identities, and the Kubernetes provider on it."""

    provider: pulumi_kubernetes.Provider
    name: pulumi.Output[str]
    cluster: containerservice.ManagedCluster
    issuer: pulumi.Output[str]

    def __init__(self, name: str, spec: PlatformSpec, base: Foundation, opts: pulumi.ResourceOptions | None = None):
        super().__init__("shipyard:azure:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix, nodes = spec.prefix, base.network.subnets["nodes"]
        control = iam.workload_identity(f"{prefix}-aks-control", layout.identity(spec, "aks"), base.group_name,
                                        base.location, base.tags, child)
        kubelet = iam.workload_identity(f"{prefix}-aks-kubelet", layout.identity(spec, "kubelet"), base.group_name,
                                        base.location, base.tags, child)
        iam.grant(control, "network_contributor", nodes, "subnet-nodes", base.subscription, child)
        iam.grant(control, "identity_operator", kubelet.id, "identity-kubelet", base.subscription, child)
        iam.grant(kubelet, "acr_pull", base.registry.id, "registry", base.subscription, child)
        plans = aks_facts.pool_plans(spec)
        system = next(plan for plan in plans if plan.system)
        shared = cluster_rules.shared_storage_class(spec) is not None
        self.cluster = containerservice.ManagedCluster(
            f"{prefix}-aks", resource_name_=layout.aks_cluster(spec), resource_group_name=base.group_name,
            location=base.location, dns_prefix=layout.aks_dns_prefix(spec),
            node_resource_group=layout.node_resource_group(spec),
            sku=containerservice.ManagedClusterSKUArgs(name="Base", tier="Standard" if spec.is_prod else "Free"),
            identity=containerservice.ManagedClusterIdentityArgs(type="UserAssigned",
                                                                 user_assigned_identities=[control.id]),
            identity_profile={"kubeletidentity": containerservice.UserAssignedIdentityArgs(
                resource_id=kubelet.id, client_id=kubelet.client_id, object_id=kubelet.identity.principal_id)},
            agent_pool_profiles=[containerservice.ManagedClusterAgentPoolProfileArgs(
                name=system.name, mode="System", **self._pool_args(system, nodes))],
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure", network_plugin_mode="overlay", network_dataplane="cilium",
                network_policy="cilium", pod_cidr=aks_facts.POD_CIDR, service_cidr=aks_facts.SERVICE_CIDR,
                dns_service_ip=aks_facts.DNS_SERVICE_IP, load_balancer_sku="standard", outbound_type="loadBalancer"),
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True)),
            aad_profile=containerservice.ManagedClusterAADProfileArgs(managed=True, enable_azure_rbac=True,
                                                                      tenant_id=base.tenant),
            disable_local_accounts=True, enable_rbac=True,
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                authorized_ip_ranges=list(spec.networking.allowed_cidrs) or None),
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel="stable", node_os_upgrade_channel="NodeImage"),
            storage_profile=containerservice.ManagedClusterStorageProfileArgs(
                disk_csi_driver=containerservice.ManagedClusterStorageProfileDiskCSIDriverArgs(enabled=True),
                file_csi_driver=containerservice.ManagedClusterStorageProfileFileCSIDriverArgs(enabled=shared)),
            tags=base.tags,
            opts=stateful(pulumi.ResourceOptions(parent=self, depends_on=[*control.grants, *kubelet.grants]), spec))
        self.name = self.cluster.name
        self.issuer = self.cluster.oidc_issuer_profile.apply(lambda p: p.issuer_url if p else "")
        pools = [self._pool(spec, base, plan, nodes) for plan in plans if not plan.system]
        admin = authorization.RoleAssignment(
            f"{prefix}-aks-deployer", role_assignment_name=iam.stable_guid(prefix, "deployer", "aks_cluster_admin"),
            principal_id=base.deployer, role_definition_id=base.subscription.apply(
                lambda sub: iam.role_definition_id(sub, "aks_cluster_admin")),
            scope=self.cluster.id, opts=child)
        monitor.DiagnosticSetting(
            f"{prefix}-aks-logs", name="to-log-analytics", resource_uri=self.cluster.id,
            workspace_id=base.workspace.id, opts=child,
            logs=[monitor.DiagnosticsLogSettingsArgs(category=category, enabled=True) for category in AUDIT_LOGS])
        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=base.group_name, resource_name=self.cluster.name, format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[self.cluster]))
        config = credentials.kubeconfigs.apply(lambda found: kubeconfig(found[0].value))
        # Every Kubernetes object waits for the pools and for the deployer's right to create it: the provider does.
        self.provider = pulumi_kubernetes.Provider(
            f"{prefix}-aks", kubeconfig=config,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*pools, admin]))
        self.register_outputs({"name": self.name, "fqdn": self.cluster.fqdn, "issuer": self.issuer})

    @staticmethod
    def _pool_args(plan: aks_facts.PoolPlan, subnet: pulumi.Input[str]) -> dict:
        """What every pool takes, the inline system pool as the separate ones: autoscaled between its bounds,
        Azure Linux on the nodes' subnet, its labels and taints, Spot and the GPU driver when the plan says."""
        return dict(
            vm_size=plan.machine, count=max(plan.min_nodes, 1 if plan.system else 0), min_count=plan.min_nodes,
            max_count=plan.max_nodes, enable_auto_scaling=True, type="VirtualMachineScaleSets", os_type="Linux",
            os_sku="AzureLinux", os_disk_size_gb=128, vnet_subnet_id=subnet, node_labels=plan.labels,
            node_taints=aks_facts.node_taints(plan) or None, enable_node_public_ip=False,
            scale_set_priority="Spot" if plan.spot else None, scale_set_eviction_policy="Delete" if plan.spot else None,
            spot_max_price=-1 if plan.spot else None,
            gpu_profile=containerservice.GPUProfileArgs(driver="Install") if plan.gpus else None)

    def _pool(self, spec: PlatformSpec, base: Foundation, plan: aks_facts.PoolPlan,
              subnet: pulumi.Input[str]) -> containerservice.AgentPool:
        """One User-mode training pool of the cluster."""
        return containerservice.AgentPool(
            f"{spec.prefix}-pool-{plan.name}", agent_pool_name=plan.name, resource_name_=self.cluster.name,
            resource_group_name=base.group_name, mode="User", tags=base.tags, **self._pool_args(plan, subnet),
            opts=pulumi.ResourceOptions(parent=self))


class ClusterBackends(pulumi.ComponentResource):
    """The registry's cloud side on the cluster profile: storage, PostgreSQL, the tracking server's identity."""

    artifacts: pulumi.Output[str]
    database_url: pulumi.Output[str] | None
    database_ready: list[pulumi.Resource]
    annotations: Mapping[str, Mapping[str, pulumi.Input[str]]]

    def __init__(self, name: str, spec: PlatformSpec, base: Foundation, aks: AksCluster, namespace: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("shipyard:azure:ClusterBackends", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        container = layout.CONTAINERS["mlflow"]
        account, containers = artifact_storage(spec, base, child, {"mlflow": container})
        self.artifacts = account.name.apply(lambda name: artifact_uri(name, container))
        mlflow = iam.workload_identity(f"{spec.prefix}-mlflow", layout.identity(spec, "mlflow"), base.group_name,
                                       base.location, base.tags, child)
        iam.grant(mlflow, "blob_contributor", containers["mlflow"].id, "container-mlflow", base.subscription, child)
        managedidentity.FederatedIdentityCredential(
            f"{spec.prefix}-mlflow-federated", federated_identity_credential_resource_name="kubernetes-mlflow",
            resource_name_=mlflow.identity.name, resource_group_name=base.group_name, issuer=aks.issuer,
            subject=service_account_subject(namespace, k8s_layout.MLFLOW), audiences=[TOKEN_AUDIENCE], opts=child)
        self.annotations = {k8s_layout.MLFLOW: {CLIENT_ID_ANNOTATION: mlflow.client_id}}
        self.database_url, self.database_ready = None, list(mlflow.grants)
        if spec.registry.database.external_url is None:
            self.database_url, ready = postgres_server(spec, base, child)
            self.database_ready += ready
        self.register_outputs({"artifacts": self.artifacts})


def build_cluster(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage, image: ImagePlan,
                  secrets: SecretValues, provider: pulumi_azure_native.Provider) -> TargetResources:
    """Declare the AKS cluster profile: the foundation, the cluster, the backends, and the Kubernetes target's
    workloads on the cluster."""
    under = pulumi.ResourceOptions(parent=platform, providers={"azure-native": provider})
    workloads = cluster_rules.workload_spec(spec)
    base = Foundation(f"{spec.prefix}-foundation", spec, image, opts=under, cluster=True)
    aks = AksCluster(f"{spec.prefix}-cluster", spec, base, opts=under)
    backends = ClusterBackends(f"{spec.prefix}-backends", spec, base, aks, k8s_layout.namespace_name(workloads),
                               opts=under)
    profile = ClusterProfile(provider=aks.provider, image=base.image, database_url=backends.database_url,
                             database_ready=backends.database_ready, artifacts=backends.artifacts,
                             artifact_ports=ARTIFACT_PORTS, account_annotations=backends.annotations,
                             pod_labels={k8s_layout.MLFLOW: dict([USE_LABEL])}, placement=pool_placement())
    built = build_workloads(platform, workloads, package, image, secrets, profile)
    built.extra_outputs.update(cluster=aks.name, image_repository=base.registry.login_server)
    return built
