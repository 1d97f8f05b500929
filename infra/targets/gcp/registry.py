"""The model registry on GCP: MLflow on Cloud Run, Cloud SQL PostgreSQL on a private IP, artifacts in GCS.

The database has no public IP (private services access), takes only encrypted connections, keeps backups
with point-in-time recovery, and in prod is regional with deletion protection. Its password is generated
(letters and digits: no URL escaping) and kept with the whole SQLAlchemy URL in Secret Manager, which
Cloud Run injects into MLflow's environment; it never appears in plaintext in any input or output.

MLflow's ingress is internal (only the VPC reaches it: every workload's egress goes through it) with
invoker IAM off, since MLflow's clients send no Google ID tokens - the same trust as the AWS target's
internal load balancer. Clients write artifacts straight to `gs://<bucket>/mlflow` with their own service
accounts (`--no-serve-artifacts`).
"""

from __future__ import annotations

import pulumi
import pulumi_random
from pulumi_gcp import cloudrunv2, secretmanager, sql

from infra.components import ModelRegistry
from infra.secrets import SecretValues
from infra.spec import PlatformSpec, Secret
from infra.targets.gcp.foundation import Foundation, after, stateful
from infra.targets.gcp.names import gcp_name
from infra.targets.gcp.services import run_url
from infra.targets.gcp.sizes import size
from infra.targets.gcp.storage import ArtifactBucket, artifact_bucket
from infra.targets.gcp.workload import PORT, Workload, service_template
from infra.targets.objectstore import PREFIXES

POSTGRES = 5432
DB_USER = "mlflow"
DB_NAME = "mlflow"
POSTGRES_VERSION = "POSTGRES_16"
#: Cloud SQL keeps at most seven days of transaction logs for point-in-time recovery.
MAX_LOG_DAYS = 7
ACCESSOR = "roles/secretmanager.secretAccessor"


def database_url(password: str, host: str, port: int = POSTGRES) -> str:
    """The SQLAlchemy URL MLflow connects with (psycopg2 driver: a bare postgresql:// wants psycopg 3)."""
    return f"postgresql+psycopg2://{DB_USER}:{password}@{host}:{port}/{DB_NAME}?sslmode=require"


def backup_configuration(days: int) -> sql.DatabaseInstanceSettingsBackupConfigurationArgs:
    """Daily backups kept `days` (0: none) with point-in-time recovery over up to a week of logs."""
    if days == 0:
        return sql.DatabaseInstanceSettingsBackupConfigurationArgs(enabled=False)
    return sql.DatabaseInstanceSettingsBackupConfigurationArgs(
        enabled=True, point_in_time_recovery_enabled=True, start_time="02:00",
        transaction_log_retention_days=min(days, MAX_LOG_DAYS),
        backup_retention_settings=sql.DatabaseInstanceSettingsBackupConfigurationBackupRetentionSettingsArgs(
            retained_backups=days, retention_unit="COUNT"))


def mlflow_args(*, workers: int, artifact_root: str, allowed_hosts: str) -> list[str]:
    """The MLflow server's arguments: lean (one process per worker, no job runner), artifacts not proxied,
    answering only its own run.app host."""
    return ["server", "--host", "0.0.0.0", "--port", str(PORT), "--workers", str(workers),
            "--default-artifact-root", artifact_root, "--no-serve-artifacts", "--allowed-hosts", allowed_hosts]


class GcpModelRegistry(ModelRegistry):
    """MLflow on Cloud Run, its Cloud SQL backend and the artifact bucket."""

    bucket: ArtifactBucket

    def __init__(self, name: str, spec: PlatformSpec, base: Foundation, secrets: SecretValues,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.spec, self.base, self.secrets = spec, base, secrets
        self.bucket = artifact_bucket(spec, base, self.child)
        self.artifact_uri = self.bucket.uri(PREFIXES["mlflow"])
        secret, waits = self._database()
        access = secretmanager.SecretIamMember(f"{spec.prefix}-mlflow-secret", secret_id=secret, role=ACCESSOR,
                                               member=base.member("mlflow"), project=base.project, opts=self.child)
        service = gcp_name(spec.prefix, "mlflow", kind="run_service")
        self.tracking_uri = base.number.apply(lambda n: run_url(service, n, base.region))
        args = pulumi.Output.all(self.artifact_uri, self.tracking_uri).apply(lambda v: mlflow_args(
            workers=spec.registry.workers, artifact_root=v[0], allowed_hosts=v[1].removeprefix("https://")))
        workload = Workload(
            image=base.image, account=base.accounts["mlflow"].email, network=base.network.network,
            subnetwork=base.network.subnetwork, bucket=self.bucket.name, size=spec.registry.server_size,
            env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, secret_env={"MLFLOW_BACKEND_STORE_URI": secret})
        high_availability = spec.registry.database.high_availability
        server = cloudrunv2.Service(
            f"{spec.prefix}-mlflow", name=service, location=base.region, project=base.project,
            ingress="INGRESS_TRAFFIC_INTERNAL_ONLY", invoker_iam_disabled=True, deletion_protection=spec.is_prod,
            description="MLflow tracking server and model registry", labels=base.labels,
            template=service_template(
                workload, commands=["mlflow"], min_instances=1 if high_availability else 0,
                max_instances=3 if high_availability else 1, probe_path="/health", args=args),
            opts=after(self.child, access, *waits))
        self.done(bucket=self.bucket.name, service=server.name)

    def _database(self) -> tuple[pulumi.Output[str], list[pulumi.Resource]]:
        """The backend store's secret (its id) and what MLflow must wait for (the version this stack writes)."""
        spec = self.spec
        external = spec.registry.database.external_url
        if external is not None:
            return self._external_database(external)
        base, prefix, database = self.base, spec.prefix, spec.registry.database
        password = pulumi_random.RandomPassword(f"{prefix}-database", length=32, special=False, opts=self.child)
        instance = sql.DatabaseInstance(
            gcp_name(prefix, "mlflow", kind="sql_instance", autonamed=True), project=base.project,
            region=base.region, database_version=POSTGRES_VERSION, encryption_key_name=base.key.id,
            deletion_protection=spec.is_prod,
            settings=sql.DatabaseInstanceSettingsArgs(
                tier=size(database.size).sql_tier, edition="ENTERPRISE",
                availability_type="REGIONAL" if database.high_availability else "ZONAL",
                disk_size=database.storage_gb, disk_type="PD_SSD", disk_autoresize=True,
                disk_autoresize_limit=database.storage_gb * 2, deletion_protection_enabled=spec.is_prod,
                ip_configuration=sql.DatabaseInstanceSettingsIpConfigurationArgs(
                    ipv4_enabled=False, private_network=base.network.network, ssl_mode="ENCRYPTED_ONLY"),
                backup_configuration=backup_configuration(database.backup_retention_days),
                maintenance_window=sql.DatabaseInstanceSettingsMaintenanceWindowArgs(day=7, hour=3),
                user_labels=base.labels),
            opts=stateful(after(self.child, base.network.peering, *base.key_grants), spec))
        sql.Database(f"{prefix}-mlflow", name=DB_NAME, instance=instance.name, project=base.project,
                     opts=stateful(self.child, spec))
        sql.User(f"{prefix}-mlflow", name=DB_USER, instance=instance.name, password=password.result,
                 project=base.project, opts=self.child)
        url = pulumi.Output.all(password.result, instance.private_ip_address).apply(
            lambda v: database_url(v[0], v[1]))
        return self._secret("mlflow-db", "MLflow's PostgreSQL URL", pulumi.Output.secret(url))

    def _external_database(self, url: Secret) -> tuple[pulumi.Output[str], list[pulumi.Resource]]:
        if url.ref is not None:  # an existing Secret Manager secret whose latest version is the URL
            return pulumi.Output.from_input(url.ref), []
        return self._secret("mlflow-db-url", "MLflow's external database URL", self.secrets.value(url))

    def _secret(self, name: str, description: str, value: pulumi.Input[str]
                ) -> tuple[pulumi.Output[str], list[pulumi.Resource]]:
        spec, base = self.spec, self.base
        secret = secretmanager.Secret(
            f"{spec.prefix}-{name}", secret_id=gcp_name(spec.prefix, name, kind="secret"), project=base.project,
            labels=base.labels, annotations={"description": description}, deletion_protection=spec.is_prod,
            replication=secretmanager.SecretReplicationArgs(user_managed=secretmanager.SecretReplicationUserManagedArgs(
                replicas=[secretmanager.SecretReplicationUserManagedReplicaArgs(
                    location=base.region,
                    customer_managed_encryption=(
                        secretmanager.SecretReplicationUserManagedReplicaCustomerManagedEncryptionArgs(
                            kms_key_name=base.key.id)))])),
            opts=stateful(after(self.child, *base.key_grants), spec))
        version = secretmanager.SecretVersion(f"{spec.prefix}-{name}", secret=secret.id, secret_data=value,
                                              opts=self.child)
        return secret.id, [version]
