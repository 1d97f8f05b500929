"""The registry's PostgreSQL: a single-instance StatefulSet with its own volume and a headless Service.

High availability on Kubernetes means an operator (CloudNativePG, Zalando) or a managed database; use
`registry.database.external_url` for either. Backups likewise belong to the operator / provider (or Velero).
"""

from __future__ import annotations

import pulumi
from pulumi_kubernetes.apps.v1 import (
    StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicyArgs,
    StatefulSetSpecArgs,
)
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    ContainerPortArgs,
    PersistentVolumeClaimArgs,
    PersistentVolumeClaimSpecArgs,
    PodTemplateSpecArgs,
    VolumeResourceRequirementsArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs

from infra.targets.kubernetes import layout, network
from infra.targets.kubernetes.context import Context, network_policy, service, service_account, stateful
from infra.targets.kubernetes.labels import Workload
from infra.targets.kubernetes.sizes import cpu_only, resources
from infra.targets.kubernetes.workload import (
    SecretFiles,
    container_security,
    empty_dir,
    env,
    exec_probe,
    mount,
    pod_spec,
)

#: The PostgreSQL image, pinned by digest (the official image runs as any uid when its data directory is
#: writable). Refresh: `docker buildx imagetools inspect postgres:16.6 --format '{{json .Manifest.Digest}}'`.
POSTGRES_IMAGE = ("docker.io/library/postgres:16.6"
                  "@sha256:557fea37a744d5f4c8faab304b0a90858b53ab119735a88c131fd19dab802f36")
PGDATA_MOUNT = "/var/lib/postgresql/data"


def pg_isready() -> list[str]:
    """The readiness command: the server accepts connections to the MLflow database."""
    return ["pg_isready", "-h", "127.0.0.1", "-p", str(layout.POSTGRES_PORT), "-U", layout.POSTGRES_USER,
            "-d", layout.POSTGRES_DB]


def declare_postgres(ctx: Context, password_secret: pulumi.Input[str], clients: Workload,
                     opts: pulumi.ResourceOptions) -> tuple[Workload, StatefulSet]:
    """Declare PostgreSQL for MLflow (`clients`), its password read from the file of `password_secret`'s
    `password` key (the official image's `POSTGRES_PASSWORD_FILE`)."""
    spec = ctx.spec
    password = SecretFiles("password", password_secret, ("password",))
    db = ctx.workload(layout.POSTGRES, "database")
    account = service_account(ctx, "postgresql", layout.POSTGRES, db, opts)
    headless = service(ctx, "postgresql", layout.POSTGRES, db, [("postgres", layout.POSTGRES_PORT)], opts,
                       headless=True)
    container = ContainerArgs(
        name="postgres",
        image=POSTGRES_IMAGE,
        env=[env("POSTGRES_USER", layout.POSTGRES_USER), env("POSTGRES_DB", layout.POSTGRES_DB),
             env("POSTGRES_PASSWORD_FILE", password.path("password")),
             env("PGDATA", f"{PGDATA_MOUNT}/pgdata")],
        ports=[ContainerPortArgs(name="postgres", container_port=layout.POSTGRES_PORT)],
        resources=resources(cpu_only(spec.registry.database.size)),
        security_context=container_security(),
        volume_mounts=[mount("data", PGDATA_MOUNT), mount("run", "/var/run/postgresql"), mount("tmp", layout.TMP_DIR),
                       password.mount_args()],
        startup_probe=exec_probe(pg_isready(), period=5, failures=60),
        readiness_probe=exec_probe(pg_isready()),
        liveness_probe=exec_probe(pg_isready(), period=20, failures=6),
    )
    statefulset = StatefulSet("postgresql", metadata=ctx.meta(layout.POSTGRES, db), spec=StatefulSetSpecArgs(
        service_name=headless.metadata.apply(lambda m: m.name),
        replicas=1,
        selector=LabelSelectorArgs(match_labels=db.selector),
        persistent_volume_claim_retention_policy=StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
            when_deleted="Retain", when_scaled="Retain"),
        template=PodTemplateSpecArgs(
            metadata=ctx.pod_meta(db),
            spec=pod_spec([container], service_account=account.metadata.apply(lambda m: m.name),
                          volumes=[empty_dir("run", "16Mi"), empty_dir("tmp"), password.volume_args()]),
        ),
        volume_claim_templates=[PersistentVolumeClaimArgs(
            metadata=ObjectMetaArgs(name="data", labels=db.labels),
            spec=PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=spec.k8s.storage_class,
                resources=VolumeResourceRequirementsArgs(
                    requests={"storage": f"{spec.registry.database.storage_gb}Gi"}),
            ),
        )],
    ), opts=stateful(opts, spec))
    policy = network.postgres_policy(db.selector, network.pods(clients.selector))
    network_policy(ctx, "postgresql-network", policy, db, opts)
    return db, statefulset
