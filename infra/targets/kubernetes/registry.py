"""The model registry on Kubernetes: the MLflow tracking server (Deployment + Service, lean: N workers, no
job runner) on PostgreSQL (the built-in StatefulSet or an external database), artifacts on a volume or an
existing S3-compatible endpoint, served to every client through MLflow's artifact proxy. A cloud's cluster
profile (`profile.ClusterProfile`) gives the managed database's URL and the cloud object store instead.

The backend-store URI and the S3 credentials are Secrets mounted as files; `workload.env_from_files` wraps
`mlflow server` in a shell that exports them from those files (MLflow reads them only from the environment).
"""

from __future__ import annotations

import pulumi
import pulumi_random
from pulumi_kubernetes.apps.v1 import (
    Deployment,
    DeploymentSpecArgs,
    DeploymentStrategyArgs,
    RollingUpdateDeploymentArgs,
)
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    ContainerPortArgs,
    EnvVarArgs,
    PodTemplateSpecArgs,
    Service,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs

from infra.components import ModelRegistry
from infra.spec import PlatformSpec
from infra.targets.kubernetes import layout, network
from infra.targets.kubernetes.context import (
    Context,
    claim,
    network_policy,
    secret,
    service,
    service_account,
    stateful,
)
from infra.targets.kubernetes.labels import Workload
from infra.targets.kubernetes.postgres import declare_postgres
from infra.targets.kubernetes.rules import parse_secret_ref, uses_s3
from infra.targets.kubernetes.sizes import STORAGE_GB, cpu_only, resources
from infra.targets.kubernetes.workload import (
    SecretFiles,
    claim_volume,
    container_security,
    empty_dir,
    env,
    env_from_files,
    http_probe,
    mount,
    pod_spec,
    python_env,
)

#: The environment variables MLflow (boto3) reads the S3 credentials from, also the keys of their Secret.
S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
BACKEND_STORE_VAR = "MLFLOW_BACKEND_STORE_URI"


def artifacts_destination(spec: PlatformSpec) -> str:
    """Where the tracking server stores artifacts: `s3://<bucket>/artifacts` or a path on its volume."""
    return f"s3://{spec.registry.artifacts.bucket}/artifacts" if uses_s3(spec) else layout.ARTIFACTS_DIR


def artifact_uri(spec: PlatformSpec, namespace: str) -> str:
    """The artifact store, as the outputs contract gives it: the bucket prefix or `pvc://<ns>/<claim>`."""
    return artifacts_destination(spec) if uses_s3(spec) else f"pvc://{namespace}/{layout.ARTIFACTS_CLAIM}"


def mlflow_command(spec: PlatformSpec, destination: str | None = None) -> list[str]:
    """The lean tracking server: the spec's worker count; artifacts proxied (clients need no storage access) to
    `destination` (default: `artifacts_destination`)."""
    return ["mlflow", "server", "--host", "0.0.0.0", "--port", str(layout.MLFLOW_PORT),
            "--workers", str(spec.registry.workers),
            "--serve-artifacts", "--artifacts-destination", destination or artifacts_destination(spec)]


def allowed_hosts(namespace: str, domain: str) -> str:
    """Host headers the tracking server accepts: its Service names, and localhost for `kubectl port-forward`."""
    hosts = [layout.MLFLOW, f"{layout.MLFLOW}.{namespace}", f"{layout.MLFLOW}.{namespace}.svc",
             layout.service_host(layout.MLFLOW, namespace, domain), "localhost", "127.0.0.1"]
    return ",".join(h for host in hosts for h in (host, f"{host}:*"))


def mlflow_replicas(spec: PlatformSpec, object_store: bool | None = None) -> int:
    """One server on a ReadWriteOnce artifact volume; two in prod when artifacts are in an object store (the S3
    endpoint unless `object_store` says otherwise)."""
    return 2 if spec.is_prod and (uses_s3(spec) if object_store is None else object_store) else 1


def postgres_uri(namespace: str, domain: str, password: str) -> str:
    """The SQLAlchemy URL of the built-in database (psycopg2 driver: a bare `postgresql://` wants psycopg 3)."""
    host = layout.service_host(layout.POSTGRES, namespace, domain)
    return (f"postgresql+psycopg2://{layout.POSTGRES_USER}:{password}@{host}:{layout.POSTGRES_PORT}/"
            f"{layout.POSTGRES_DB}")


class KubernetesRegistry(ModelRegistry):
    """MLflow on Kubernetes. `workload` identifies the tracking server's pods, `service` is its Service."""

    workload: Workload
    service: Service

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        spec, profile = ctx.spec, ctx.profile
        self.workload = mlflow = ctx.workload(layout.MLFLOW, "registry")
        backend, database, depends = self._backend_store(ctx, mlflow)
        storage_env, credentials = self._artifact_store(ctx, mlflow)
        account = service_account(ctx, "mlflow", layout.MLFLOW, mlflow, self.child)

        secret_files = [backend, *([credentials] if credentials else [])]
        from_files = {BACKEND_STORE_VAR: backend.path(backend.keys[0])}
        if credentials is not None:
            from_files.update({key: credentials.path(key) for key in S3_KEYS})
        volumes = [empty_dir("tmp", "1Gi"), *(files.volume_args() for files in secret_files)]
        mounts = [mount("tmp", layout.TMP_DIR), *(files.mount_args() for files in secret_files)]
        if not ctx.object_store:
            artifacts = claim(ctx, "mlflow-artifacts", layout.ARTIFACTS_CLAIM, mlflow, STORAGE_GB["artifacts"],
                              "ReadWriteOnce", stateful(self.child, spec))
            volumes.append(claim_volume("artifacts", artifacts.metadata.apply(lambda m: m.name)))
            mounts.append(mount("artifacts", layout.ARTIFACTS_DIR))
        destination = pulumi.Output.from_input(profile.artifacts) if profile.artifacts is not None else None
        command = (env_from_files(mlflow_command(spec), from_files) if destination is None else
                   destination.apply(lambda d: env_from_files(mlflow_command(spec, d), from_files)))
        container = ContainerArgs(
            name="mlflow",
            image=ctx.image,
            command=command,
            env=python_env(
                env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),
                env("MLFLOW_SERVER_ALLOWED_HOSTS", allowed_hosts(ctx.namespace_name, spec.k8s.cluster_domain)),
                *storage_env),
            ports=[ContainerPortArgs(name="http", container_port=layout.MLFLOW_PORT)],
            resources=resources(cpu_only(spec.registry.server_size)),
            security_context=container_security(),
            volume_mounts=mounts,
            startup_probe=http_probe("/health", "http", period=5, failures=60),
            readiness_probe=http_probe("/health", "http"),
            liveness_probe=http_probe("/health", "http", period=20, failures=3),
        )
        # A ReadWriteOnce volume cannot attach to two pods on different nodes: replace, don't surge.
        strategy = (DeploymentStrategyArgs(type="RollingUpdate", rolling_update=RollingUpdateDeploymentArgs(
            max_unavailable=0, max_surge=1)) if ctx.object_store else DeploymentStrategyArgs(type="Recreate"))
        Deployment("mlflow", metadata=ctx.meta(layout.MLFLOW, mlflow), spec=DeploymentSpecArgs(
            replicas=mlflow_replicas(spec, ctx.object_store),
            selector=LabelSelectorArgs(match_labels=mlflow.selector),
            strategy=strategy,
            template=PodTemplateSpecArgs(
                metadata=ctx.pod_meta(mlflow),
                spec=pod_spec([container], service_account=account.metadata.apply(lambda m: m.name),
                              volumes=volumes, placement=ctx.placement("registry"),
                              pull_secret=ctx.pull_secret)),
        ), opts=pulumi.ResourceOptions.merge(self.child, pulumi.ResourceOptions(
            depends_on=[*depends, *profile.database_ready])))
        svc = service(ctx, "mlflow", layout.MLFLOW, mlflow, [("http", layout.MLFLOW_PORT)], self.child)
        clients = network.Peer(names=layout.MLFLOW_CLIENTS)
        policy = network.mlflow_policy(mlflow.selector, clients, database, spec.registry.artifacts.s3_endpoint,
                                       extra_ports=profile.artifact_ports)
        network_policy(ctx, "mlflow-network", policy, mlflow, self.child)

        self.service = svc
        self.tracking_uri = pulumi.Output.from_input(layout.tracking_uri(ctx.namespace_name, spec.k8s.cluster_domain))
        self.artifact_uri = destination or pulumi.Output.from_input(artifact_uri(spec, ctx.namespace_name))
        self.done()

    def _backend_store(self, ctx: Context, mlflow: Workload) -> tuple[SecretFiles, network.Peer | None, list]:
        """The Secret file holding the backend-store URI; the database's peer (None: external); what to wait for."""
        spec = ctx.spec
        external = spec.registry.database.external_url
        volume = "backend-store"
        if external is not None and external.ref is not None:
            name, key = parse_secret_ref(external)
            return SecretFiles(volume, name, (key,)), None, []
        url = ctx.secrets.value(external) if external is not None else ctx.profile.database_url
        if url is not None:
            store = secret(ctx, "mlflow-backend-store", layout.BACKEND_SECRET, mlflow, {"uri": url},
                           stateful(self.child, spec))
            return SecretFiles(volume, store.metadata.apply(lambda m: m.name), ("uri",)), None, []
        password = pulumi_random.RandomPassword("postgresql-password", length=32, special=False,
                                                opts=stateful(self.child, spec))
        result = pulumi.Output.secret(password.result)
        store = secret(ctx, "mlflow-backend-store", layout.BACKEND_SECRET, mlflow, {
            "password": result,
            "uri": result.apply(lambda p: postgres_uri(ctx.namespace_name, spec.k8s.cluster_domain, p)),
        }, stateful(self.child, spec))
        store_name = store.metadata.apply(lambda m: m.name)
        db, statefulset = declare_postgres(ctx, store_name, mlflow, self.child)
        return SecretFiles(volume, store_name, ("uri",)), network.pods(db.selector), [statefulset]

    def _artifact_store(self, ctx: Context, mlflow: Workload) -> tuple[list[EnvVarArgs], SecretFiles | None]:
        """The endpoint's env and the Secret files holding the credentials for S3 artifacts; nothing for a volume."""
        artifacts = ctx.spec.registry.artifacts
        if not uses_s3(ctx.spec):  # a volume, or the cluster profile's store reached with workload identity
            return [], None
        variables = [env("MLFLOW_S3_ENDPOINT_URL", artifacts.s3_endpoint or "")]
        credentials = artifacts.s3_credentials
        if credentials is None:
            return variables, None
        if credentials.ref is not None:
            name: pulumi.Input[str] = credentials.ref
        else:
            value = ctx.secrets.value(credentials)
            store = secret(ctx, "mlflow-s3", layout.S3_SECRET, mlflow, {
                S3_KEYS[0]: value.apply(lambda v: v.partition(":")[0]),
                S3_KEYS[1]: value.apply(lambda v: v.partition(":")[2]),
            }, self.child)
            name = store.metadata.apply(lambda m: m.name)
        return variables, SecretFiles("s3-credentials", name, S3_KEYS)
