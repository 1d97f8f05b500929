"""The GKE cluster profile (`gcp.compute: kubernetes`): a private, regional GKE cluster in the foundation's
network, running the Kubernetes target's workloads unchanged through the cluster's own provider.

- `GkeCluster` (`shipyard:gcp:Cluster`): the cluster (private nodes on the foundation's subnet, VPC-native,
  Dataplane V2 enforcing the workloads' NetworkPolicies, Workload Identity, Kubernetes Secrets encrypted with
  the platform key, the Filestore CSI driver when the shared data volume is ReadWriteMany), the nodes' own
  service account (logs, metrics and pulling from the platform's repository, nothing else), the node pools of
  `gke_facts.pool_plans`, and the Kubernetes provider built from the cluster's kubeconfig.
- `ClusterBackends` (`shipyard:gcp:ClusterBackends`): the artifact bucket, Cloud SQL (unless the spec gives an
  external database), and the tracking server's Workload Identity: its Kubernetes ServiceAccount impersonates
  one Google service account allowed to write the bucket's `mlflow/` prefix. No other workload gets a Google
  identity (they reach artifacts through MLflow's proxy); pods never see the nodes' credentials (GKE_METADATA).
- `build_cluster`: the foundation, the cluster, the backends, then `kubernetes.program.build_workloads` with the
  profile's hooks (`infra.targets.kubernetes.profile.ClusterProfile`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pulumi_gcp
import pulumi_kubernetes
from pulumi_gcp import artifactregistry, container, kms, projects, serviceaccount

from infra.image import ImagePlan
from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets import cluster as cluster_rules
from infra.targets.base import TargetResources
from infra.targets.gcp import gke_facts
from infra.targets.gcp.foundation import ENCRYPTER, Foundation, after, stateful
from infra.targets.gcp.names import gcp_name
from infra.targets.gcp.registry import cloud_sql
from infra.targets.gcp.services import service_agent
from infra.targets.gcp.storage import artifact_bucket
from infra.targets.kubernetes import layout
from infra.targets.kubernetes.profile import ClusterProfile, pool_placement
from infra.targets.kubernetes.program import build_workloads
from infra.targets.objectstore import PREFIXES

#: Google service accounts of the cluster profile: the nodes', and the tracking server's (Workload Identity).
ACCOUNTS = ("nodes", "mlflow")
#: What the nodes' service account may do: write logs and metrics, pull the runtime image (on the repository).
NODE_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/monitoring.viewer",
              "roles/stackdriver.resourceMetadata.writer", "roles/autoscaling.metricsWriter")
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
#: The annotation binding a Kubernetes ServiceAccount to the Google service account it acts as.
IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"
#: Ports the tracking server's pods call for the bucket: Google's APIs (443) and GKE's metadata server, which
#: hands out the Workload Identity token (80 on 169.254.169.254; 988 on Dataplane V2's 169.254.169.252).
ARTIFACT_PORTS = (443, 80, 988)
#: Components of the Kubernetes target that run on the system pool (training has its own pools).


def kubeconfig(name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig for the cluster that authenticates with `gke-gcloud-auth-plugin` (no credential inside)."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": f"https://{endpoint}",
                                                "certificate-authority-data": ca_certificate}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "gke-gcloud-auth-plugin",
            "installHint": "gcloud components install gke-gcloud-auth-plugin", "provideClusterInfo": True}}}],
    }, indent=2)



def workload_member(project: str, namespace: str, account: str) -> str:
    """The IAM member of a Kubernetes ServiceAccount in the project's workload pool."""
    return f"serviceAccount:{project}.svc.id.goog[{namespace}/{account}]"


class GkeCluster(pulumi.ComponentResource):
    """The GKE cluster, its node pools and node account, and the Kubernetes provider on it."""

    provider: pulumi_kubernetes.Provider
    name: pulumi.Output[str]
    cluster: container.Cluster

    def __init__(self, name: str, spec: PlatformSpec, base: Foundation, opts: pulumi.ResourceOptions | None = None):
        super().__init__("shipyard:gcp:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix, project = spec.prefix, base.project
        nodes = base.accounts["nodes"]
        grants = [projects.IAMMember(f"{prefix}-nodes-{role.split('/')[1].replace('.', '-')}", project=project,
                                     role=role, member=base.member("nodes"), opts=child) for role in NODE_ROLES]
        grants.append(artifactregistry.RepositoryIamMember(
            f"{prefix}-nodes-pull", repository=base.repository.name, location=base.region, project=project,
            role="roles/artifactregistry.reader", member=base.member("nodes"), opts=child))
        agent = kms.CryptoKeyIAMMember(
            f"{prefix}-key-container", crypto_key_id=base.key.id, role=ENCRYPTER, opts=child,
            member=base.number.apply(lambda n: f"serviceAccount:{service_agent(n, 'container.googleapis.com')}"))
        shared = cluster_rules.shared_storage_class(spec) is not None
        self.cluster = container.Cluster(
            f"{prefix}-gke", name=gcp_name(prefix, "gke", kind="cluster"), project=project, location=base.region,
            network=base.network.network, subnetwork=base.network.subnetwork, networking_mode="VPC_NATIVE",
            ip_allocation_policy=container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=gke_facts.POD_RANGE[0],
                services_secondary_range_name=gke_facts.SERVICE_RANGE[0]),
            remove_default_node_pool=True, initial_node_count=1,
            node_config=container.ClusterNodeConfigArgs(
                service_account=nodes.email, oauth_scopes=[CLOUD_PLATFORM],
                workload_metadata_config=container.ClusterNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA")),
            release_channel=container.ClusterReleaseChannelArgs(channel="REGULAR"),
            datapath_provider="ADVANCED_DATAPATH",
            private_cluster_config=container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True, enable_private_endpoint=False,
                master_ipv4_cidr_block=gke_facts.CONTROL_PLANE_RANGE),
            master_authorized_networks_config=container.ClusterMasterAuthorizedNetworksConfigArgs(cidr_blocks=[
                container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(cidr_block=cidr, display_name="allowed")
                for cidr in spec.networking.allowed_cidrs]) if spec.networking.allowed_cidrs else None,
            workload_identity_config=container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=f"{project}.svc.id.goog"),
            database_encryption=container.ClusterDatabaseEncryptionArgs(state="ENCRYPTED", key_name=base.key.id),
            addons_config=container.ClusterAddonsConfigArgs(
                gce_persistent_disk_csi_driver_config=container.ClusterAddonsConfigGcePersistentDiskCsiDriverConfigArgs(
                    enabled=True),
                gcp_filestore_csi_driver_config=container.ClusterAddonsConfigGcpFilestoreCsiDriverConfigArgs(
                    enabled=shared)),
            enable_shielded_nodes=True, deletion_protection=spec.is_prod, resource_labels=base.labels,
            opts=stateful(after(child, agent, *grants), spec))
        self.name = self.cluster.name
        pools = [self._pool(spec, base, plan, nodes.email) for plan in gke_facts.pool_plans(spec)]
        config = pulumi.Output.all(self.cluster.name, self.cluster.endpoint,
                                   self.cluster.master_auth.cluster_ca_certificate).apply(
            lambda v: kubeconfig(f"gke_{project}_{base.region}_{v[0]}", v[1], v[2]))
        # Every Kubernetes object waits for the node pools: the provider does.
        self.provider = pulumi_kubernetes.Provider(f"{prefix}-gke", kubeconfig=config,
                                                   opts=after(child, *pools))
        self.register_outputs({"name": self.name, "endpoint": self.cluster.endpoint})

    def _pool(self, spec: PlatformSpec, base: Foundation, plan: gke_facts.PoolPlan,
              account: pulumi.Output[str]) -> container.NodePool:
        """One node pool: autoscaled between its total bounds, auto-repaired and upgraded, shielded, pods on
        GKE's metadata server (Workload Identity only, never the node's account)."""
        accelerators = [container.NodePoolNodeConfigGuestAcceleratorArgs(
            type=gke_facts.GPU_ACCELERATOR, count=plan.gpus,
            gpu_driver_installation_config=container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                gpu_driver_version="DEFAULT"))] if plan.gpus else None
        return container.NodePool(
            f"{spec.prefix}-pool-{plan.name}", name=gcp_name(plan.name, kind="node_pool"), cluster=self.cluster.name,
            location=base.region, project=base.project, initial_node_count=1 if plan.min_nodes else 0,
            autoscaling=container.NodePoolAutoscalingArgs(
                total_min_node_count=plan.min_nodes, total_max_node_count=plan.max_nodes,
                location_policy="ANY" if plan.spot else "BALANCED"),
            management=container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=container.NodePoolNodeConfigArgs(
                machine_type=plan.machine, spot=plan.spot, disk_size_gb=100, disk_type="pd-balanced",
                image_type="COS_CONTAINERD", service_account=account, oauth_scopes=[CLOUD_PLATFORM],
                labels=plan.labels, resource_labels=base.labels, metadata={"disable-legacy-endpoints": "true"},
                taints=[container.NodePoolNodeConfigTaintArgs(key=key, value=value, effect="NO_SCHEDULE")
                        for key, value in plan.taints] or None,
                guest_accelerators=accelerators,
                workload_metadata_config=container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
                shielded_instance_config=container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True)),
            opts=pulumi.ResourceOptions(parent=self))


class ClusterBackends(pulumi.ComponentResource):
    """The registry's cloud side on the cluster profile: the bucket, Cloud SQL, the tracking server's identity."""

    artifacts: pulumi.Output[str]
    database_url: pulumi.Output[str] | None
    database_ready: list[pulumi.Resource]
    annotations: Mapping[str, Mapping[str, pulumi.Input[str]]]

    def __init__(self, name: str, spec: PlatformSpec, base: Foundation, gke: GkeCluster, namespace: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("shipyard:gcp:ClusterBackends", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = artifact_bucket(spec, base, child)
        self.artifacts = bucket.uri(PREFIXES["mlflow"])
        bucket.grant(f"{spec.prefix}-mlflow", base.member("mlflow"), child, write=[PREFIXES["mlflow"]])
        # The workload pool exists once the cluster does.
        serviceaccount.IAMMember(
            f"{spec.prefix}-mlflow-workload-identity", service_account_id=base.accounts["mlflow"].id,
            role="roles/iam.workloadIdentityUser", member=workload_member(base.project, namespace, layout.MLFLOW),
            opts=after(child, gke.cluster))
        self.annotations = {layout.MLFLOW: {IDENTITY_ANNOTATION: base.accounts["mlflow"].email}}
        self.database_url, self.database_ready = None, []
        if spec.registry.database.external_url is None:
            self.database_url, self.database_ready = cloud_sql(spec, base, child)
        self.register_outputs({"artifacts": self.artifacts})


def build_cluster(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage, image: ImagePlan,
                  secrets: SecretValues, provider: pulumi_gcp.Provider) -> TargetResources:
    """Declare the GKE cluster profile: the foundation, the cluster, the backends, and the Kubernetes target's
    workloads on the cluster."""
    under = pulumi.ResourceOptions(parent=platform, providers={"gcp": provider})
    workloads = cluster_rules.workload_spec(spec)
    base = Foundation(f"{spec.prefix}-foundation", spec, image, list(ACCOUNTS), opts=under, cluster=True)
    gke = GkeCluster(f"{spec.prefix}-cluster", spec, base, opts=under)
    backends = ClusterBackends(f"{spec.prefix}-backends", spec, base, gke, layout.namespace_name(workloads),
                               opts=under)
    profile = ClusterProfile(provider=gke.provider, image=base.image, database_url=backends.database_url,
                             database_ready=backends.database_ready, artifacts=backends.artifacts,
                             artifact_ports=ARTIFACT_PORTS, account_annotations=backends.annotations,
                             placement=pool_placement())
    built = build_workloads(platform, workloads, package, image, secrets, profile)
    built.extra_outputs.update(cluster=gke.name, image_repository=base.repository_url)
    return built
