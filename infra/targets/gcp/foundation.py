"""What every GCP component shares: the project's APIs, the network, the platform's KMS key, the runtime
image repository, one service account per workload, the metric descriptors and the overview dashboard.

A `shipyard:gcp:Foundation` component (beside the four contract components) so shared state has one owner.
Workloads reach Cloud SQL over private services access and Google's APIs (GCS, Cloud Run, Secret Manager)
through Private Google Access on the subnet; with no Cloud NAT they reach nothing else, and nothing reaches
them but Cloud Run's own front end.

For the GKE cluster profile (`cluster=True`) the subnet also carries the cluster's pod and service ranges,
a Cloud NAT lets the private nodes pull images from outside Google, the GKE (and Filestore) APIs are enabled,
and the Cloud Monitoring descriptors and dashboard of the managed profile are not declared.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_gcp import (
    artifactregistry,
    compute,
    kms,
    monitoring,
    organizations,
    projects,
    serviceaccount,
    servicenetworking,
)

from infra.components import RegistryLogin, RuntimeImage
from infra.image import ImagePlan
from infra.spec import PlatformSpec
from infra.targets.gcp import dashboards, gke_facts
from infra.targets.gcp.names import account_id, gcp_name, labels
from infra.targets.gcp.services import APIS, CREATED_AGENTS, KMS_AGENTS, service_agent
from pipelines.adapters.gcp import DESCRIPTORS, descriptor

#: APIs the GKE cluster profile needs beyond the platform's.
CLUSTER_APIS = ("container.googleapis.com", "file.googleapis.com")
KEY_ROTATION_SECONDS = 90 * 24 * 3600
UNTAGGED_IMAGE_DAYS = 14
ENCRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


def stateful(opts: pulumi.ResourceOptions, spec: PlatformSpec) -> pulumi.ResourceOptions:
    """`opts` plus protect and retain-on-delete when the spec protects state (prod)."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=spec.protect,
                                                                     retain_on_delete=spec.protect))


def after(opts: pulumi.ResourceOptions, *resources: pulumi.Resource) -> pulumi.ResourceOptions:
    """`opts` plus a dependency on `resources`."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(resources)))


def network_path(project: str, network: str) -> str:
    """An existing network named in the spec, as `projects/<project>/global/networks/<name>`."""
    return network if network.startswith("projects/") else f"projects/{project}/global/networks/{network}"


@dataclass
class Network:
    """The VPC network and the private subnet every workload's Direct VPC egress uses."""

    network: pulumi.Output[str]
    subnetwork: pulumi.Output[str]
    #: The private services access connection: Cloud SQL waits for it.
    peering: servicenetworking.Connection


def artifact_registry_login(region: str, repository: artifactregistry.Repository) -> RegistryLogin:
    """Push credentials for the stack's repository: the deployer's OAuth access token (short-lived, read at each
    `up`), as `docker login -u oauth2accesstoken` uses it."""
    token = organizations.get_client_config_output(opts=pulumi.InvokeOptions(parent=repository)).access_token
    return RegistryLogin(address=f"{region}-docker.pkg.dev", username="oauth2accesstoken",
                         password=pulumi.Output.secret(token))


class Foundation(pulumi.ComponentResource):
    """The APIs, network, key, image repository, workload accounts, metric descriptors and overview dashboard."""

    network: Network
    image: pulumi.Output[str]

    def __init__(self, name: str, spec: PlatformSpec, image: ImagePlan, workloads: list[str],
                 opts: pulumi.ResourceOptions | None = None, cluster: bool = False):
        """`image` says whether to build the runtime image; `workloads` names every workload that gets its own
        service account; `cluster` lays the network out for the GKE cluster profile."""
        super().__init__("shipyard:gcp:Foundation", name, None, opts)
        self.spec, self.cluster = spec, cluster
        child = pulumi.ResourceOptions(parent=self)
        self.project = spec.gcp_settings.project or ""
        self.region = spec.region or ""
        self.labels = labels(spec.all_tags)
        self.number = organizations.get_project_output(
            project_id=self.project, opts=pulumi.InvokeOptions(parent=self)).number
        self.apis = [projects.Service(f"{spec.prefix}-api-{api.split('.')[0]}", service=api, project=self.project,
                                      disable_on_destroy=False, opts=child)
                     for api in ((*APIS, *(CLUSTER_APIS if cluster else ())) if spec.gcp_settings.enable_apis else ())]
        self.child = after(child, *self.apis)
        self.network = self._network()
        self.key = self._key()
        repository = artifactregistry.Repository(
            f"{spec.prefix}-runtime", repository_id=gcp_name(spec.prefix, "runtime", kind="repository"),
            location=self.region, format="DOCKER", kms_key_name=self.key.id, labels=self.labels,
            description=f"runtime image of {spec.prefix}",
            docker_config=artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
            cleanup_policies=[artifactregistry.RepositoryCleanupPolicyArgs(
                id="expire-untagged", action="DELETE", condition=artifactregistry.RepositoryCleanupPolicyConditionArgs(
                    tag_state="UNTAGGED", older_than=f"{UNTAGGED_IMAGE_DAYS * 86400}s"))],
            opts=stateful(after(self.child, *self.key_grants), spec))
        self.repository = repository
        self.repository_url = pulumi.Output.concat(self.region, "-docker.pkg.dev/", self.project, "/",
                                                   repository.repository_id)
        # The image every workload runs: the one the program builds and pushes to this repository (its digest),
        # or the spec's pinned `runtime_image` (Cloud Run and GKE pull Artifact Registry and public registries).
        if image.pinned is None:
            self.image = RuntimeImage(f"{spec.prefix}-runtime", image, self.repository_url,
                                      artifact_registry_login(self.region, repository), self.child).ref
        else:
            self.image = pulumi.Output.from_input(image.pinned)
        self.accounts = {w: serviceaccount.Account(
            f"{spec.prefix}-{w}", account_id=account_id(spec.prefix, w), project=self.project,
            display_name=gcp_name(spec.prefix, w, kind="display"), description=f"shipyard workload: {w}",
            opts=self.child) for w in workloads}
        if not cluster:
            self._monitoring()
        self.register_outputs({"network": self.network.network, "key": self.key.id,
                               "repository_url": self.repository_url, "image": self.image})

    def _monitoring(self) -> None:
        """The managed profile's custom metric descriptors and overview dashboard."""
        spec = self.spec
        for metric in DESCRIPTORS:
            body = descriptor(dashboards.namespace(spec), metric)
            monitoring.MetricDescriptor(
                f"{spec.prefix}-{metric}", type=body["type"], metric_kind=body["metricKind"],
                value_type=body["valueType"], unit=body["unit"], display_name=body["displayName"],
                description=body["description"], project=self.project, opts=self.child,
                labels=[monitoring.MetricDescriptorLabelArgs(key=label["key"], value_type=label["valueType"])
                        for label in body["labels"]])
        overview = monitoring.Dashboard(f"{spec.prefix}-overview", project=self.project, opts=self.child,
                                        dashboard_json=dashboards.dashboard_json(spec, spec.models, "overview"))
        self.dashboard_url = overview.id.apply(lambda i: dashboards.dashboard_url(self.project, i))

    def member(self, workload: str) -> pulumi.Output[str]:
        """The IAM member of a workload's service account."""
        return self.accounts[workload].email.apply(lambda email: f"serviceAccount:{email}")

    def _network(self) -> Network:
        spec, child, prefix = self.spec, self.child, self.spec.prefix
        existing = spec.networking.existing_network
        if existing is not None:
            network: pulumi.Output[str] = pulumi.Output.from_input(network_path(self.project, existing))
        else:
            vpc = compute.Network(f"{prefix}-vpc", name=gcp_name(prefix, "vpc", kind="network"), project=self.project,
                                  auto_create_subnetworks=False, routing_mode="REGIONAL",
                                  description=f"shipyard {prefix}", opts=child)
            network = vpc.id
        subnet = compute.Subnetwork(
            f"{prefix}-workloads", name=gcp_name(prefix, "workloads", kind="network"), project=self.project,
            region=self.region, network=network, ip_cidr_range=spec.gcp_settings.subnet_cidr,
            private_ip_google_access=True, opts=child,
            secondary_ip_ranges=[compute.SubnetworkSecondaryIpRangeArgs(range_name=name, ip_cidr_range=cidr)
                                 for name, cidr in (gke_facts.POD_RANGE, gke_facts.SERVICE_RANGE)]
            if self.cluster else None,
            log_config=compute.SubnetworkLogConfigArgs(aggregation_interval="INTERVAL_10_MIN", flow_sampling=0.5,
                                                       metadata="INCLUDE_ALL_METADATA"))
        compute.Firewall(f"{prefix}-deny-ingress", name=gcp_name(prefix, "deny-ingress", kind="network"),
                         project=self.project, network=network, direction="INGRESS", priority=65534,
                         source_ranges=["0.0.0.0/0"], denies=[compute.FirewallDenyArgs(protocol="all")],
                         description="nothing enters the workloads' network: Cloud Run's front end serves them",
                         log_config=compute.FirewallLogConfigArgs(metadata="INCLUDE_ALL_METADATA"), opts=child)
        peering_range = compute.GlobalAddress(
            f"{prefix}-services", name=gcp_name(prefix, "services", kind="network"), project=self.project,
            network=network, purpose="VPC_PEERING", address_type="INTERNAL",
            prefix_length=spec.gcp_settings.peering_prefix_length,
            description="private services access: Cloud SQL's private IP", opts=child)
        if self.cluster:
            router = compute.Router(f"{prefix}-router", name=gcp_name(prefix, "router", kind="network"),
                                    project=self.project, region=self.region, network=network, opts=child)
            compute.RouterNat(f"{prefix}-nat", name=gcp_name(prefix, "nat", kind="network"), project=self.project,
                              region=self.region, router=router.name, nat_ip_allocate_option="AUTO_ONLY",
                              source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
                              log_config=compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
                              opts=child)
        peering = servicenetworking.Connection(
            f"{prefix}-services", network=network, service="servicenetworking.googleapis.com",
            reserved_peering_ranges=[peering_range.name], opts=child)
        return Network(network=network, subnetwork=subnet.id, peering=peering)

    def _key(self) -> kms.CryptoKey:
        """The platform key (key rings and keys cannot be deleted in GCP: auto-named so a new stack never
        collides with a destroyed one) and the service agents' grants to use it."""
        spec, prefix = self.spec, self.spec.prefix
        ring = kms.KeyRing(gcp_name(prefix, kind="key_ring", autonamed=True), project=self.project,
                           location=self.region, opts=self.child)
        key = kms.CryptoKey(gcp_name(prefix, "platform", kind="crypto_key", autonamed=True), key_ring=ring.id,
                            purpose="ENCRYPT_DECRYPT", rotation_period=f"{KEY_ROTATION_SECONDS}s",
                            labels=self.labels, opts=stateful(self.child, spec))
        identities = {service: projects.ServiceIdentity(f"{prefix}-agent-{service.split('.')[0]}", service=service,
                                                        project=self.project, opts=self.child)
                      for service in CREATED_AGENTS}
        self.agents = {service: (identities[service].email if service in identities
                                 else self.number.apply(lambda n, s=service: service_agent(n, s)))
                       for service in (*CREATED_AGENTS, *KMS_AGENTS)}
        self.key_grants = [kms.CryptoKeyIAMMember(
            f"{prefix}-key-{service.split('.')[0]}", crypto_key_id=key.id, role=ENCRYPTER,
            member=self.agents[service].apply(lambda email: f"serviceAccount:{email}"), opts=self.child)
            for service in KMS_AGENTS]
        return key
