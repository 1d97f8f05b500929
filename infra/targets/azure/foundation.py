"""What every Azure component shares: the resource group, the network and its private DNS, Key Vault, the
container registry, Log Analytics and Application Insights, and the internal Container Apps environment.

A `shipyard:azure:Foundation` component (beside the four contract components) so that shared state has one
owner. Everything data-holding is reached through private endpoints on the platform's VNet (or the subnets
this stack adds to an existing VNet, `networking.existing_network`); the Container Apps environment is
internal to the VNet, with a private DNS zone for its apps.

For the AKS cluster profile (`cluster=True`) the first subnet holds the cluster's nodes instead of the Container
Apps environment, and neither the environment nor Key Vault (the registry's secrets live in the cluster) is made.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import (
    app,
    applicationinsights,
    authorization,
    containerregistry,
    keyvault,
    monitor,
    network,
    operationalinsights,
    privatedns,
    resources,
)

from infra.components import RuntimeImage
from infra.image import ImagePlan
from infra.spec import PlatformSpec
from infra.targets.azure import iam, layout
from infra.targets.azure.names import azure_name
from infra.targets.azure.rules import VNET_ID
from infra.targets.azure.sizes import CONSUMPTION
from pipelines.adapters.azure import metric_namespace, runtime_environment

#: Private DNS zones of the private endpoints, by the sub-resource (group id) they serve.
PRIVATE_ZONES = {"blob": "privatelink.blob.core.windows.net", "vault": "privatelink.vaultcore.azure.net",
                 "registry": "privatelink.azurecr.io"}
#: Subnet prefix lengths carved from the address space: Container Apps, PostgreSQL, private endpoints.
SUBNETS = (("apps", 23, "Microsoft.App/environments"),
           ("postgres", 26, "Microsoft.DBforPostgreSQL/flexibleServers"),
           ("endpoints", 26, None))
#: The AKS cluster profile's subnets: the nodes' (Azure CNI overlay: one address per node) in the apps' place.
CLUSTER_SUBNETS = (("nodes", 23, None), *SUBNETS[1:])


def subnet_layout(cluster: bool) -> tuple[tuple[str, int, str | None], ...]:
    """The subnets of a profile: (role, prefix length, delegation)."""
    return CLUSTER_SUBNETS if cluster else SUBNETS


def carve(cidr: str, cluster: bool = False) -> dict[str, str]:
    """The three subnets' CIDRs, consecutive from the start of `cidr` (apps or nodes /23, postgres /26,
    endpoints /26)."""
    space = ipaddress.ip_network(cidr)
    cursor = int(space.network_address)
    carved = {}
    for role, length, _ in subnet_layout(cluster):
        block = ipaddress.ip_network(f"{ipaddress.ip_address(cursor)}/{length}")
        if not block.subnet_of(space):
            raise ValueError(f"{cidr} is too small for the platform's subnets (needs a /22)")
        carved[role] = str(block)
        cursor += block.num_addresses
    return carved


def existing_network(resource_id: str) -> tuple[str, str]:
    """(resource group, name) of an existing VNet named by its resource id."""
    match = VNET_ID.match(resource_id)
    if match is None:
        raise ValueError(f"{resource_id!r} is not a VNet resource id")
    return match["group"], match["name"]


def image_reference(runtime_image: str, login_server: str) -> str:
    """The image every workload runs: the spec's image where it already is in this registry, else its
    repository path, tag and digest under this registry (pushed there by CD, docs/azure.md)."""
    if runtime_image.startswith(f"{login_server}/"):
        return runtime_image
    first, _, rest = runtime_image.partition("/")
    path = rest if rest and ("." in first or ":" in first or first == "localhost") else runtime_image
    return f"{login_server}/{path}"


@dataclass
class Network:
    """The VNet and the platform's subnets in it."""

    vnet_id: pulumi.Output[str]
    subnets: dict[str, pulumi.Output[str]]


class Foundation(pulumi.ComponentResource):
    """The resource group, network, private DNS, vault, registry, logs and the Container Apps environment."""

    def __init__(self, name: str, spec: PlatformSpec, image: ImagePlan, opts: pulumi.ResourceOptions | None = None,
                 cluster: bool = False):
        """`image` says whether to build the runtime image; `cluster` lays the foundation out for the AKS cluster
        profile (see the module docstring)."""
        super().__init__("shipyard:azure:Foundation", name, None, opts)
        self.spec, self.cluster = spec, cluster
        self.child = pulumi.ResourceOptions(parent=self)
        self.tags = spec.all_tags
        self.location = spec.region or ""
        self.prefix = spec.prefix
        self.metric_namespace = metric_namespace(spec.name, spec.environment)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOptions(parent=self))
        self.subscription = client.subscription_id
        self.tenant = client.tenant_id
        self.deployer = client.object_id
        group = resources.ResourceGroup(f"{self.prefix}-rg", resource_group_name=layout.resource_group(spec),
                                        location=self.location, tags=self.tags, opts=self.child)
        self.group_name = group.name
        self.group_id = group.id
        self.network = self._network()
        self.zones = {key: self.private_zone(key, zone) for key, zone in PRIVATE_ZONES.items()
                      if not (cluster and key == "vault")}
        if not cluster:
            self.vault = self._vault()
        self.registry = self._registry()
        if image.pinned is None:
            # Pushed with the deployer's `az acr login` (the registry has no admin user), from inside
            # networking.allowed_cidrs (its firewall); the apps pull the digest with their identities.
            repository = pulumi.Output.concat(self.registry.login_server, "/", f"{self.prefix}-runtime")
            self.image = RuntimeImage(f"{self.prefix}-runtime", image, repository, None, self.child).ref
        else:
            self.image = self.registry.login_server.apply(lambda server: image_reference(image.pinned or "", server))
        self.workspace, self.insights = self._observability()
        outputs = {"resource_group": self.group_name, "vnet_id": self.network.vnet_id,
                   "registry": self.registry.login_server, "image": self.image, "insights_id": self.insights.id}
        if not cluster:
            self.environment = self._environment()
            outputs["vault_uri"] = self.vault.properties.vault_uri
        self.register_outputs(outputs)

    # ------------------------------------------------------------------------------------------- helpers

    def workload(self, role: str) -> iam.Workload:
        """A user-assigned identity for one workload of this platform, allowed to pull the runtime image."""
        workload = iam.workload_identity(f"{self.prefix}-{role}", layout.identity(self.spec, role), self.group_name,
                                         self.location, self.tags, self.child)
        iam.grant(workload, "acr_pull", self.registry.id, "registry", self.subscription, self.child)
        return workload

    def runtime_env(self, account: pulumi.Input[str], client_id: pulumi.Input[str]) -> list[app.EnvironmentVarArgs]:
        """The environment every container of this platform gets (`pipelines.adapters.azure.runtime_environment`)."""
        values = pulumi.Output.all(account, client_id).apply(lambda v: runtime_environment(
            account=v[0], client_id=v[1], region=self.location, namespace=self.metric_namespace))
        names = runtime_environment(account="", client_id="", region="", namespace="")
        return [app.EnvironmentVarArgs(name=key, value=values.apply(lambda env, key=key: env[key])) for key in names]

    def private_zone(self, key: str, zone: pulumi.Input[str]) -> privatedns.PrivateZone:
        """A private DNS zone linked to the platform's VNet."""
        created = privatedns.PrivateZone(f"{self.prefix}-dns-{key}", private_zone_name=zone, location="global",
                                         resource_group_name=self.group_name, tags=self.tags, opts=self.child)
        privatedns.VirtualNetworkLink(
            f"{self.prefix}-dns-{key}", private_zone_name=created.name, resource_group_name=self.group_name,
            virtual_network_link_name=azure_name(self.prefix, key, "link", kind="network"), location="global",
            virtual_network=privatedns.SubResourceArgs(id=self.network.vnet_id), registration_enabled=False,
            tags=self.tags, opts=self.child)
        return created

    def private_endpoint(self, key: str, target_id: pulumi.Input[str], group: str,
                         opts: pulumi.ResourceOptions) -> network.PrivateEndpoint:
        """A private endpoint of `target_id`'s `group` sub-resource on the endpoints subnet, in its DNS zone."""
        endpoint = network.PrivateEndpoint(
            f"{self.prefix}-pe-{key}", private_endpoint_name=azure_name(self.prefix, key, "pe", kind="network"),
            resource_group_name=self.group_name, location=self.location, tags=self.tags, opts=opts,
            subnet=network.SubnetArgs(id=self.network.subnets["endpoints"]),
            private_link_service_connections=[network.PrivateLinkServiceConnectionArgs(
                name=key, private_link_service_id=target_id, group_ids=[group])])
        network.PrivateDnsZoneGroup(
            f"{self.prefix}-pe-{key}", private_dns_zone_group_name="default", private_endpoint_name=endpoint.name,
            resource_group_name=self.group_name, opts=opts,
            private_dns_zone_configs=[network.PrivateDnsZoneConfigArgs(name=group,
                                                                       private_dns_zone_id=self.zones[group].id)])
        return endpoint

    # ------------------------------------------------------------------------------------------- pieces

    def _network(self) -> Network:
        spec, settings = self.spec, self.spec.azure_settings
        cidrs = carve(settings.vnet_cidr, self.cluster)
        existing = spec.networking.existing_network
        if existing:
            vnet_group, vnet_name = existing_network(existing)
            vnet_id = pulumi.Output.from_input(existing)
        else:
            vnet = network.VirtualNetwork(
                f"{self.prefix}-vnet", virtual_network_name=layout.network(spec), resource_group_name=self.group_name,
                location=self.location, address_space=network.AddressSpaceArgs(address_prefixes=[settings.vnet_cidr]),
                tags=self.tags, opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]))
            vnet_group, vnet_name, vnet_id = self.group_name, vnet.name, vnet.id
        subnets: dict[str, pulumi.Output[str]] = {}
        previous: list[pulumi.Resource] = []
        for role, _, service in subnet_layout(self.cluster):
            subnet = network.Subnet(
                f"{self.prefix}-{role}", subnet_name=azure_name(self.prefix, role, kind="network"),
                resource_group_name=vnet_group, virtual_network_name=vnet_name, address_prefix=cidrs[role],
                delegations=[network.DelegationArgs(name=role, service_name=service)] if service else None,
                private_endpoint_network_policies="Disabled" if role == "endpoints" else None,
                default_outbound_access=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(previous)))  # Azure refuses parallel subnets
            previous = [subnet]
            subnets[role] = subnet.id
        return Network(vnet_id=vnet_id, subnets=subnets)

    def _vault(self) -> keyvault.Vault:
        spec = self.spec
        vault = keyvault.Vault(
            f"{self.prefix}-kv", vault_name=self.subscription.apply(lambda sub: layout.key_vault(spec, sub)),
            resource_group_name=self.group_name, location=self.location, tags=self.tags,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=self.tenant, sku=keyvault.SkuArgs(family="A", name="standard"),
                enable_rbac_authorization=True, enable_soft_delete=True, soft_delete_retention_in_days=90,
                enable_purge_protection=True, public_network_access="Disabled",
                network_acls=keyvault.NetworkRuleSetArgs(default_action="Deny", bypass="AzureServices")),
            opts=pulumi.ResourceOptions(parent=self, protect=spec.protect, retain_on_delete=spec.protect))
        self.private_endpoint("vault", vault.id, "vault", self.child)
        return vault

    def _registry(self) -> containerregistry.Registry:
        spec = self.spec
        registry = containerregistry.Registry(
            f"{self.prefix}-acr", registry_name=self.subscription.apply(lambda sub: layout.registry(spec, sub)),
            resource_group_name=self.group_name, location=self.location, tags=self.tags,
            sku=containerregistry.SkuArgs(name="Premium"), admin_user_enabled=False, anonymous_pull_enabled=False,
            public_network_access="Enabled", network_rule_bypass_options="AzureServices",
            network_rule_set=containerregistry.NetworkRuleSetArgs(default_action="Deny", ip_rules=[
                containerregistry.IPRuleArgs(i_p_address_or_range=cidr, action="Allow")
                for cidr in spec.networking.allowed_cidrs]),
            zone_redundancy="Enabled" if spec.is_prod else "Disabled",
            opts=pulumi.ResourceOptions(parent=self, protect=spec.protect, retain_on_delete=spec.protect))
        self.private_endpoint("registry", registry.id, "registry", self.child)
        return registry

    def _observability(self) -> tuple[operationalinsights.Workspace, applicationinsights.Component]:
        spec = self.spec
        workspace = operationalinsights.Workspace(
            f"{self.prefix}-logs", workspace_name=layout.workspace(spec), resource_group_name=self.group_name,
            location=self.location, sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=spec.azure_settings.log_retention_days, tags=self.tags, opts=self.child)
        insights = applicationinsights.Component(
            f"{self.prefix}-insights", resource_name_=azure_name(self.prefix, "insights", kind="workspace"),
            resource_group_name=self.group_name, location=self.location, kind="web", application_type="web",
            workspace_resource_id=workspace.id, disable_local_auth=True, ingestion_mode="LogAnalytics",
            tags=self.tags, opts=self.child)
        return workspace, insights

    def _environment(self) -> app.ManagedEnvironment:
        spec = self.spec
        profiles = [app.WorkloadProfileArgs(name=CONSUMPTION, workload_profile_type=CONSUMPTION)]
        if spec.training.size == "gpu" or any(m.serving.size == "gpu" for m in spec.models):
            profiles.append(app.WorkloadProfileArgs(name="gpu",
                                                    workload_profile_type=spec.azure_settings.gpu_workload_profile))
        environment = app.ManagedEnvironment(
            f"{self.prefix}-apps", environment_name=layout.environment(spec), resource_group_name=self.group_name,
            location=self.location, tags=self.tags, workload_profiles=profiles, zone_redundant=spec.is_prod,
            vnet_configuration=app.VnetConfigurationArgs(infrastructure_subnet_id=self.network.subnets["apps"],
                                                         internal=True),
            app_logs_configuration=app.AppLogsConfigurationArgs(destination="azure-monitor"),
            public_network_access="Disabled", opts=self.child)
        monitor.DiagnosticSetting(
            f"{self.prefix}-apps-logs", name="to-log-analytics", resource_uri=environment.id,
            workspace_id=self.workspace.id, opts=self.child,
            logs=[monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)])
        zone = self.private_zone("apps", environment.default_domain)
        privatedns.PrivateRecordSet(
            f"{self.prefix}-apps-wildcard", private_zone_name=zone.name, resource_group_name=self.group_name,
            record_type="A", relative_record_set_name="*", ttl=300,
            a_records=[privatedns.ARecordArgs(ipv4_address=environment.static_ip)], opts=self.child)
        return environment
