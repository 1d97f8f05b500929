"""The model registry on Azure: MLflow on the internal Container Apps environment, PostgreSQL Flexible Server
on its delegated subnet, artifacts on `wasbs://` in the platform's storage account.

The storage account takes no anonymous access and no shared keys (every client uses its managed identity),
TLS 1.2, versioning and soft delete, a lifecycle rule for old versions, and a private endpoint; it is
reachable from outside the VNet only from `networking.allowed_cidrs` (the deployer's range, for uploads).
The database password is generated, and the whole SQLAlchemy URL is kept in Key Vault, which Container Apps
reads with MLflow's identity: it never appears in plaintext in an input or output.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_random
from pulumi_azure_native import app, dbforpostgresql, keyvault, storage

from infra.components import ModelRegistry
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets.azure import iam, layout
from infra.targets.azure.foundation import Foundation
from infra.targets.azure.sizes import CONSUMPTION, backup_days, postgres_storage_gb, size
from pipelines.adapters.azure import artifact_uri

MLFLOW_PORT = 5000
POSTGRES = 5432
DB_USER = "mlflow"
DB_NAME = "mlflow"
POSTGRES_VERSION = "16"
BACKEND_SECRET = "mlflow-backend-store-uri"
#: Days deleted blobs and containers stay restorable.
DELETE_RETENTION_DAYS = {True: 30, False: 7}


def database_url(password: str, host: str, port: int = POSTGRES) -> str:
    """The SQLAlchemy URL MLflow connects with (psycopg2 driver, TLS required as Azure enforces)."""
    return f"postgresql+psycopg2://{DB_USER}:{password}@{host}:{port}/{DB_NAME}?sslmode=require"


def mlflow_args(*, artifact_root: str, workers: int) -> list[str]:
    """`mlflow server` arguments (lean: no job runner, `workers` uvicorn workers, no artifact proxying)."""
    return ["server", "--host", "0.0.0.0", "--port", str(MLFLOW_PORT), "--workers", str(workers),
            "--default-artifact-root", artifact_root, "--no-serve-artifacts"]


def stateful(opts: pulumi.ResourceOptions, spec: PlatformSpec) -> pulumi.ResourceOptions:
    """Options of a data-holding resource: protected and retained on delete when the spec says `protect`."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=spec.protect,
                                                                     retain_on_delete=spec.protect))


def secret_uri(vault_uri: pulumi.Input[str], name: str) -> pulumi.Output[str]:
    """The versionless URI of a Key Vault secret (Container Apps follows its latest version)."""
    return pulumi.Output.from_input(vault_uri).apply(lambda uri: f"{uri.rstrip('/')}/secrets/{name}")


def artifact_storage(spec: PlatformSpec, base: Foundation, opts: pulumi.ResourceOptions,
                     containers: Mapping[str, str] = layout.CONTAINERS
                     ) -> tuple[storage.StorageAccount, dict[str, storage.BlobContainer]]:
    """The platform's storage account (no anonymous access, no shared keys, TLS 1.2, versioning, soft delete,
    a lifecycle rule for old versions, a private endpoint) and its blob `containers` (key -> name)."""
    artifacts = spec.registry.artifacts
    account = storage.StorageAccount(
        f"{spec.prefix}-storage", account_name=base.subscription.apply(lambda s: layout.storage_account(spec, s)),
        resource_group_name=base.group_name, location=base.location, kind="StorageV2", access_tier="Hot",
        sku=storage.SkuArgs(name="Standard_ZRS" if spec.is_prod else "Standard_LRS"),
        allow_blob_public_access=False, allow_shared_key_access=False, default_to_o_auth_authentication=True,
        minimum_tls_version="TLS1_2", enable_https_traffic_only=True, allow_cross_tenant_replication=False,
        encryption=storage.EncryptionArgs(
            key_source="Microsoft.Storage", require_infrastructure_encryption=True,
            services=storage.EncryptionServicesArgs(blob=storage.EncryptionServiceArgs(enabled=True,
                                                                                       key_type="Account"))),
        public_network_access="Enabled",
        network_rule_set=storage.NetworkRuleSetArgs(default_action="Deny", bypass="AzureServices", ip_rules=[
            storage.IPRuleArgs(i_p_address_or_range=cidr, action="Allow")
            for cidr in spec.networking.allowed_cidrs]),
        tags=base.tags, opts=stateful(opts, spec))
    retention = DELETE_RETENTION_DAYS[spec.is_prod]
    storage.BlobServiceProperties(
        f"{spec.prefix}-blob-service", account_name=account.name, resource_group_name=base.group_name,
        blob_services_name="default", is_versioning_enabled=artifacts.versioning,
        delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=retention),
        container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=retention),
        opts=opts)
    created = {
        key: storage.BlobContainer(f"{spec.prefix}-{key}", container_name=container, account_name=account.name,
                                   resource_group_name=base.group_name, public_access="None",
                                   opts=stateful(opts, spec))
        for key, container in containers.items()}
    storage.ManagementPolicy(
        f"{spec.prefix}-lifecycle", account_name=account.name, resource_group_name=base.group_name,
        management_policy_name="default", opts=opts,
        policy=storage.ManagementPolicySchemaArgs(rules=[storage.ManagementPolicyRuleArgs(
            name="expire-old-versions", type="Lifecycle", enabled=True,
            definition=storage.ManagementPolicyDefinitionArgs(
                filters=storage.ManagementPolicyFilterArgs(blob_types=["blockBlob"]),
                actions=storage.ManagementPolicyActionArgs(version=storage.ManagementPolicyVersionArgs(
                    delete=storage.DateAfterCreationArgs(
                        days_after_creation_greater_than=artifacts.noncurrent_version_retention_days)))))]))
    base.private_endpoint("blob", account.id, "blob", opts)
    return account, created


def postgres_server(spec: PlatformSpec, base: Foundation, opts: pulumi.ResourceOptions
                    ) -> tuple[pulumi.Output[str], list[pulumi.Resource]]:
    """The registry's PostgreSQL Flexible Server on its delegated subnet (private only, backups, zone-redundant HA
    when asked): its SQLAlchemy URL as a Pulumi secret, and the database MLflow needs before it starts."""
    database = spec.registry.database
    row = size(database.size)
    zone = base.private_zone("postgres", f"{spec.prefix}.private.postgres.database.azure.com")
    password = pulumi_random.RandomPassword(f"{spec.prefix}-database", length=32, special=False, opts=opts)
    server = dbforpostgresql.Server(
        f"{spec.prefix}-mlflow-db", server_name=base.subscription.apply(lambda s: layout.postgres(spec, s)),
        resource_group_name=base.group_name, location=base.location, version=POSTGRES_VERSION,
        administrator_login=DB_USER, administrator_login_password=pulumi.Output.secret(password.result),
        sku=dbforpostgresql.SkuArgs(name=row.database_sku, tier=row.database_tier),
        storage=dbforpostgresql.StorageArgs(storage_size_gb=postgres_storage_gb(database.storage_gb),
                                            auto_grow="Enabled"),
        backup=dbforpostgresql.BackupArgs(backup_retention_days=backup_days(database.backup_retention_days),
                                          geo_redundant_backup="Enabled" if spec.is_prod else "Disabled"),
        high_availability=dbforpostgresql.HighAvailabilityArgs(
            mode="ZoneRedundant" if database.high_availability else "Disabled"),
        network=dbforpostgresql.NetworkArgs(delegated_subnet_resource_id=base.network.subnets["postgres"],
                                            private_dns_zone_arm_resource_id=zone.id,
                                            public_network_access="Disabled"),
        auth_config=dbforpostgresql.AuthConfigArgs(password_auth="Enabled", active_directory_auth="Disabled"),
        tags=base.tags, opts=stateful(opts, spec))
    created = dbforpostgresql.Database(f"{spec.prefix}-mlflow-db", database_name=DB_NAME, server_name=server.name,
                                       resource_group_name=base.group_name, charset="UTF8", collation="en_US.utf8",
                                       opts=stateful(opts, spec))
    url = pulumi.Output.all(password.result, server.fully_qualified_domain_name).apply(
        lambda values: database_url(values[0], values[1]))
    return pulumi.Output.secret(url), [created]


class AzureModelRegistry(ModelRegistry):
    """MLflow, its database and the platform's storage account."""

    account: storage.StorageAccount
    containers: dict[str, storage.BlobContainer]

    def __init__(self, name: str, spec: PlatformSpec, base: Foundation, secrets: SecretValues,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.spec, self.base, self.secrets = spec, base, secrets
        self.account, self.containers = artifact_storage(spec, base, self.child)
        self.account_name = self.account.name
        self.artifact_uri = self.account.name.apply(lambda account: artifact_uri(account, layout.CONTAINERS["mlflow"]))
        self.identity = base.workload("mlflow")
        self.grant("mlflow", self.identity, "blob_reader")
        backend_secret = self._database()
        iam.grant(self.identity, "secrets_user", base.vault.id, "vault", base.subscription, self.child)
        self.tracking_uri = self._server(backend_secret)
        self.done(storage_account=self.account.name)

    def grant(self, container: str, workload: iam.Workload, role: str) -> None:
        """Give a workload a blob role on one container of the platform's account."""
        iam.grant(workload, role, self.containers[container].id, f"container-{container}", self.base.subscription,
                  self.child)

    def _database(self) -> pulumi.Output[str]:
        """The backend store's URL as a Key Vault secret URI: a PostgreSQL server's, or the spec's external one."""
        database = self.spec.registry.database
        if database.external_url is not None:
            if database.external_url.ref is not None:
                return pulumi.Output.from_input(database.external_url.ref)
            return self._secret(self.secrets.value(database.external_url))
        url, _ = postgres_server(self.spec, self.base, self.child)
        return self._secret(url)

    def _secret(self, url: pulumi.Input[str]) -> pulumi.Output[str]:
        spec, base = self.spec, self.base
        secret = keyvault.Secret(
            f"{spec.prefix}-backend-store-uri", secret_name=BACKEND_SECRET, vault_name=base.vault.name,
            resource_group_name=base.group_name, tags=base.tags, opts=stateful(self.child, spec),
            properties=keyvault.SecretPropertiesArgs(value=pulumi.Output.secret(url), content_type="text/plain"))
        return pulumi.Output.all(secret.id, base.vault.properties.vault_uri).apply(
            lambda values: f"{values[1].rstrip('/')}/secrets/{BACKEND_SECRET}")

    def _server(self, backend_secret: pulumi.Output[str]) -> pulumi.Output[str]:
        spec, base, workload = self.spec, self.base, self.identity
        row = size(spec.registry.server_size)
        cpu, memory = (row.cpu, row.memory) if not row.gpu else (4.0, "8Gi")
        env = base.runtime_env(self.account.name, workload.client_id)
        server = app.ContainerApp(
            f"{spec.prefix}-mlflow", container_app_name=layout.mlflow_app(spec), resource_group_name=base.group_name,
            location=base.location, managed_environment_id=base.environment.id, workload_profile_name=CONSUMPTION,
            identity=app.ManagedServiceIdentityArgs(type="UserAssigned", user_assigned_identities=[workload.id]),
            configuration=app.ConfigurationArgs(
                active_revisions_mode="Single",
                ingress=app.IngressArgs(external=True, target_port=MLFLOW_PORT, transport="http",
                                        allow_insecure=False),
                registries=[app.RegistryCredentialsArgs(server=base.registry.login_server, identity=workload.id)],
                secrets=[app.SecretArgs(name="backend-store-uri", key_vault_url=backend_secret,
                                        identity=workload.id)]),
            template=app.TemplateArgs(
                containers=[app.ContainerArgs(
                    name="mlflow", image=base.image, command=["mlflow"],
                    args=self.artifact_uri.apply(lambda root: mlflow_args(artifact_root=root,
                                                                          workers=spec.registry.workers)),
                    env=[*env, app.EnvironmentVarArgs(name="MLFLOW_BACKEND_STORE_URI", secret_ref="backend-store-uri"),
                         app.EnvironmentVarArgs(name="MLFLOW_SERVER_ENABLE_JOB_EXECUTION", value="false")],
                    resources=app.ContainerResourcesArgs(cpu=cpu, memory=memory),
                    probes=[app.ContainerAppProbeArgs(type="Readiness", period_seconds=10,
                                                      http_get=app.ContainerAppProbeHttpGetArgs(path="/health",
                                                                                                port=MLFLOW_PORT))])],
                scale=app.ScaleArgs(min_replicas=1, max_replicas=2 if spec.registry.database.high_availability else 1)),
            tags=base.tags, opts=pulumi.ResourceOptions(parent=self, depends_on=workload.grants))
        return server.configuration.apply(lambda c: f"https://{c.ingress.fqdn}" if c and c.ingress else "")
