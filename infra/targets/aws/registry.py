"""The model registry on AWS: MLflow with its artifacts in the platform bucket, in one of two modes.

- `self-hosted` (the default): MLflow on ECS Fargate behind an internal Application Load Balancer, with
  RDS PostgreSQL (encrypted, automated backups, multi-AZ and deletion protection in prod). It runs the
  same MLflow as every other target, with a plain HTTP tracking URI inside the VPC, in every region, and
  idles at a fraction of the managed server's price. Its password is generated (pulumi-random, letters
  and digits so it needs no URL escaping) and kept in Secrets Manager with the whole SQLAlchemy URL,
  which ECS injects into the task; it never appears in plaintext in any input or output.
- `sagemaker`: SageMaker's managed MLflow tracking server; the tracking URI is its ARN, which clients
  use through the `sagemaker-mlflow` plugin with their IAM role.

Clients write artifacts straight to `s3://<bucket>/mlflow` with their own roles (the server does not
proxy them), so the registry's artifact_uri is an S3 URI in both modes.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_random
from pulumi_aws import cloudwatch, ec2, ecs, lb, rds, sagemaker, secretsmanager
from pulumi_aws import iam as aws_iam

from infra.components import ModelRegistry
from infra.image import RUNTIME_UID
from infra.secrets import SecretValues
from infra.spec import PlatformSpec, Secret
from infra.targets.aws import iam
from infra.targets.aws.foundation import Foundation
from infra.targets.aws.jobs import region_variables
from infra.targets.aws.names import aws_name
from infra.targets.aws.network import allow, allow_aws_apis, security_group
from infra.targets.aws.sizes import size
from infra.targets.aws.storage import ArtifactBucket, artifact_bucket, stateful
from infra.targets.objectstore import PREFIXES

MLFLOW_PORT = 5000
HTTP = 80
#: Seconds the load balancer's health checks are ignored after a task starts: the leader first migrates.
MIGRATION_GRACE_SECONDS = 300
SERVER_GRACE_SECONDS = 60
POSTGRES = 5432
DB_USER = "mlflow"
DB_NAME = "mlflow"
POSTGRES_VERSION = "16"
LOG_RETENTION_DAYS = {True: 90, False: 14}


def database_url(password: str, host: str, port: int = POSTGRES) -> str:
    """The SQLAlchemy URL MLflow connects with (psycopg2 driver: a bare postgresql:// wants psycopg 3)."""
    return f"postgresql+psycopg2://{DB_USER}:{password}@{host}:{port}/{DB_NAME}"


def database_secret(password: str, host: str, port: int = POSTGRES) -> str:
    """The Secrets Manager value: RDS's usual keys plus the ready-made `url`."""
    return iam.to_json({"engine": "postgres", "username": DB_USER, "password": password, "host": host,
                        "port": port, "dbname": DB_NAME, "url": database_url(password, host, port)})


#: Hosts the MLflow server answers besides the load balancer's name: SSM port forwarding ends on the task's
#: loopback, so clients of a forwarded port send `Host: localhost:<port>`.
FORWARDED_HOSTS = ("localhost:*", "127.0.0.1:*")
#: The container that upgrades MLflow's schema before the server starts (in the leader task only).
MIGRATE = "migrate"


def mlflow_containers(*, image: str, region: str, log_group: str, artifact_root: str, workers: int,
                      backend_secret: str, allowed_hosts: list[str], migrate: bool) -> list[dict[str, Any]]:
    """The ECS containers of one MLflow task: the server (lean: no job runner, `workers` uvicorn workers) and,
    with `migrate`, a one-shot `mlflow db upgrade` it waits for (it starts only once the upgrade exited 0).

    `mlflow db upgrade` creates the tables of an empty database and migrates an older schema; only the leader
    service's single task runs it, so two tasks never migrate at once (docs/aws.md, "Schema migrations").
    """
    def container(name: str, essential: bool, entry_point: list[str], command: list[str],
                  environment: dict[str, str]) -> dict[str, Any]:
        return {
            "name": name, "image": image, "essential": essential, "entryPoint": entry_point, "command": command,
            "user": f"{RUNTIME_UID}:{RUNTIME_UID}",  # the image's default user is root, for SageMaker
            "environment": [{"name": k, "value": v} for k, v in {**environment, **region_variables(region)}.items()],
            "secrets": [{"name": "MLFLOW_BACKEND_STORE_URI", "valueFrom": backend_secret}],
            "readonlyRootFilesystem": False,  # ECS Exec (the SSM agent behind port forwarding) writes to it
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": name}},
        }

    server = container("mlflow", True, ["mlflow"], [
        "server", "--host", "0.0.0.0", "--port", str(MLFLOW_PORT), "--workers", str(workers),
        "--default-artifact-root", artifact_root, "--no-serve-artifacts"], {
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_SERVER_ALLOWED_HOSTS": ",".join([*allowed_hosts, *FORWARDED_HOSTS])})
    server["portMappings"] = [{"containerPort": MLFLOW_PORT, "protocol": "tcp"}]
    if not migrate:
        return [server]
    server["dependsOn"] = [{"containerName": MIGRATE, "condition": "SUCCESS"}]
    upgrade = container(MIGRATE, False, ["sh", "-c"], ['exec mlflow db upgrade "$MLFLOW_BACKEND_STORE_URI"'], {})
    return [upgrade, server]


def service_counts(high_availability: bool) -> tuple[int, int]:
    """(leader, replicas) MLflow tasks: the leader service always runs one (it migrates the schema); a highly
    available registry adds one replica, in a second service created once the leader is steady."""
    return 1, 1 if high_availability else 0


def secret_key_ref(secret_arn: str, json_key: str | None) -> str:
    """An ECS `valueFrom` for a whole secret or one JSON key of it."""
    return f"{secret_arn}:{json_key}::" if json_key else secret_arn


def client_statements(server_arn: str, bucket_arn: str, *, write: bool = True) -> list[iam.Statement]:
    """IAM a registry client (a job, an endpoint) needs: the artifact prefix (read, and write unless it only
    loads models), and the managed tracking server if there is one."""
    prefix = [PREFIXES["mlflow"]]
    statements = iam.s3_access(bucket_arn, read=prefix, write=prefix if write else [])
    if server_arn:
        statements.append(iam.mlflow_app_access(server_arn))
    return statements


def postgres_instance(spec: PlatformSpec, base: Foundation,
                      opts: pulumi.ResourceOptions) -> tuple[rds.Instance, pulumi.Output[str], ec2.SecurityGroup]:
    """The registry's RDS PostgreSQL in the platform's subnets: private, encrypted with the platform key, backed
    up, multi-AZ and deletion-protected as the spec says. Returns the instance, its generated password and its
    security group, which admits nothing yet (the caller allows its clients)."""
    prefix, database = spec.prefix, spec.registry.database
    db_sg = security_group(f"{prefix}-database", "MLflow database", base.network.vpc_id, spec.all_tags,
                           opts)
    password = pulumi_random.RandomPassword(f"{prefix}-database", length=32, special=False, opts=opts)
    subnets = rds.SubnetGroup(f"{prefix}-database", subnet_ids=base.network.subnet_ids, tags=spec.all_tags,
                              opts=opts)
    instance = rds.Instance(
        f"{prefix}-mlflow", identifier=aws_name(prefix, "mlflow", kind="rds"),
        engine="postgres", engine_version=POSTGRES_VERSION, auto_minor_version_upgrade=True,
        instance_class=size(database.size).database, allocated_storage=database.storage_gb,
        max_allocated_storage=database.storage_gb * 2, storage_type="gp3",
        storage_encrypted=True, kms_key_id=base.key.arn,
        db_name=DB_NAME, username=DB_USER, password=password.result,
        db_subnet_group_name=subnets.name, vpc_security_group_ids=[db_sg.id], publicly_accessible=False,
        multi_az=database.high_availability, backup_retention_period=database.backup_retention_days,
        backup_window="02:00-03:00", maintenance_window="sun:03:30-sun:04:30",
        deletion_protection=spec.is_prod, skip_final_snapshot=not spec.is_prod,
        final_snapshot_identifier=aws_name(prefix, "mlflow-final", kind="rds") if spec.is_prod else None,
        copy_tags_to_snapshot=True, apply_immediately=not spec.is_prod,
        tags=spec.all_tags, opts=stateful(opts, spec))
    return instance, password.result, db_sg


class AwsModelRegistry(ModelRegistry):
    """MLflow, its backend and the artifact bucket."""

    bucket: ArtifactBucket
    #: The SageMaker MLflow tracking server's ARN ('' when self-hosted): clients need IAM access to it.
    server_arn: pulumi.Output[str]
    #: Self-hosted: the managed policy that lets CD and people forward a port to MLflow ('' in sagemaker mode).
    tracking_access_policy: pulumi.Output[str]

    def __init__(self, name: str, spec: PlatformSpec, base: Foundation, secrets: SecretValues,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.spec = spec
        self.base = base
        self.secrets = secrets
        self.bucket = artifact_bucket(spec, base.key, self.child)
        self.artifact_uri = self.bucket.uri(PREFIXES["mlflow"])
        if spec.aws_settings.registry_mode == "sagemaker":
            self._managed()
        else:
            self._self_hosted()
        self.done(bucket=self.bucket.name, server_arn=self.server_arn,
                  tracking_access_policy=self.tracking_access_policy)

    # ------------------------------------------------------------------------------------------- managed

    def _managed(self) -> None:
        spec, base = self.spec, self.base
        role = aws_iam.Role(aws_name(spec.prefix, "mlflow-server", kind="iam_role", autonamed=True),
                            tags=spec.all_tags, opts=self.child,
                            assume_role_policy=iam.to_json(iam.assume_role("sagemaker.amazonaws.com")))
        aws_iam.RolePolicy(f"{spec.prefix}-mlflow-server", role=role.id, opts=self.child, policy=iam.policy_json(
            lambda bucket, key: iam.document([
                *iam.s3_access(bucket, read=[PREFIXES["mlflow"]], write=[PREFIXES["mlflow"]]),
                iam.kms_use(key)]),
            self.bucket.arn, base.key.arn))
        server = sagemaker.MlflowTrackingServer(
            f"{spec.prefix}-mlflow", tracking_server_name=aws_name(spec.prefix, "mlflow"),
            artifact_store_uri=self.artifact_uri, role_arn=role.arn,
            tracking_server_size=size(spec.registry.server_size).mlflow_server,
            automatic_model_registration=False, weekly_maintenance_window_start="SUN:03:00",
            tags=spec.all_tags, opts=stateful(self.child, spec))
        self.server_arn = server.arn
        self.tracking_uri = server.arn
        self.tracking_access_policy = pulumi.Output.from_input("")  # clients reach the server with their IAM role

    # --------------------------------------------------------------------------------------- self-hosted

    def _self_hosted(self) -> None:
        spec, base = self.spec, self.base
        network, tags, prefix = base.network, spec.all_tags, spec.prefix
        self.server_arn = pulumi.Output.from_input("")

        alb_sg = security_group(f"{prefix}-mlflow-alb", "MLflow load balancer", network.vpc_id, tags, self.child)
        task_sg = security_group(f"{prefix}-mlflow-task", "MLflow server tasks", network.vpc_id, tags, self.child)
        allow(f"{prefix}-alb-from-workloads", alb_sg, HTTP, self.child, inbound=True, peer_group=network.workloads_sg,
              description="MLflow clients: SageMaker jobs and endpoints")
        allow(f"{prefix}-workloads-to-alb", network.workloads_sg, HTTP, self.child, inbound=False, peer_group=alb_sg,
              description="to the MLflow tracking server")
        for index, cidr in enumerate(spec.networking.allowed_cidrs):
            allow(f"{prefix}-alb-from-allowed-{index}", alb_sg, HTTP, self.child, inbound=True, cidr=cidr,
                  description="operators' range from networking.allowed_cidrs")
        allow(f"{prefix}-alb-to-task", alb_sg, MLFLOW_PORT, self.child, inbound=False, peer_group=task_sg)
        allow(f"{prefix}-task-from-alb", task_sg, MLFLOW_PORT, self.child, inbound=True, peer_group=alb_sg)
        allow_aws_apis(f"{prefix}-mlflow-task", task_sg, network, self.child)

        secret_arn, backend_url, database = self._database(task_sg)
        balancer, target_group, listener = self._load_balancer(alb_sg)
        self._service(task_sg, secret_arn, backend_url, balancer, target_group, [listener, *database])
        self.tracking_uri = pulumi.Output.concat("http://", balancer.dns_name)

    def _database(self, task_sg: Any) -> tuple[pulumi.Output[str], pulumi.Output[str], list[pulumi.Resource]]:
        """The backend store: an RDS PostgreSQL instance, or the spec's external URL.

        Returns the secret's ARN, the ECS `valueFrom` of the SQLAlchemy URL inside it, and what MLflow's tasks
        must wait for (the instance, and the secret's value: a task started before it fails to start).
        """
        spec, base, prefix = self.spec, self.base, self.spec.prefix
        database = spec.registry.database
        if database.external_url is not None:
            allow(f"{prefix}-task-to-database", task_sg, POSTGRES, self.child, inbound=False,
                  cidr=base.network.vpc_cidr, description="the external database, reachable inside the VPC")
            return self._external_database(database.external_url)

        instance, password, db_sg = postgres_instance(spec, base, self.child)
        allow(f"{prefix}-database-from-task", db_sg, POSTGRES, self.child, inbound=True, peer_group=task_sg)
        allow(f"{prefix}-task-to-database", task_sg, POSTGRES, self.child, inbound=False, peer_group=db_sg)
        secret = secretsmanager.Secret(f"{prefix}-database", description="MLflow's PostgreSQL credentials and URL",
                                       kms_key_id=base.key.arn, recovery_window_in_days=30 if spec.is_prod else 0,
                                       tags=spec.all_tags, opts=stateful(self.child, spec))
        version = secretsmanager.SecretVersion(f"{prefix}-database", secret_id=secret.id, opts=self.child,
                                               secret_string=pulumi.Output.secret(pulumi.Output.all(
                                                   password, instance.address).apply(
                                                   lambda values: database_secret(values[0], values[1]))))
        return secret.arn, secret.arn.apply(lambda arn: secret_key_ref(arn, "url")), [instance, version]

    def _external_database(self, url: Secret) -> tuple[pulumi.Output[str], pulumi.Output[str], list[pulumi.Resource]]:
        if url.ref is not None:  # the ARN of an existing secret whose value is the URL
            return pulumi.Output.from_input(url.ref), pulumi.Output.from_input(url.ref), []
        prefix = self.spec.prefix
        secret = secretsmanager.Secret(f"{prefix}-database-url", description="MLflow's external database URL",
                                       kms_key_id=self.base.key.arn, tags=self.spec.all_tags,
                                       opts=stateful(self.child, self.spec))
        version = secretsmanager.SecretVersion(f"{prefix}-database-url", secret_id=secret.id,
                                               secret_string=self.secrets.value(url), opts=self.child)
        return secret.arn, secret.arn, [version]

    def _load_balancer(self, alb_sg: Any) -> tuple[lb.LoadBalancer, lb.TargetGroup, lb.Listener]:
        spec, network, prefix = self.spec, self.base.network, self.spec.prefix
        balancer = lb.LoadBalancer(
            f"{prefix}-mlflow", name=aws_name(prefix, "mlflow", kind="alb"), internal=True,
            load_balancer_type="application", security_groups=[alb_sg.id], subnets=network.subnet_ids,
            drop_invalid_header_fields=True, enable_deletion_protection=spec.is_prod, tags=spec.all_tags,
            opts=self.child)
        target_group = lb.TargetGroup(
            f"{prefix}-mlflow", name=aws_name(prefix, "mlflow", kind="target_group"), port=MLFLOW_PORT,
            protocol="HTTP", target_type="ip", vpc_id=network.vpc_id, deregistration_delay=30,
            health_check=lb.TargetGroupHealthCheckArgs(path="/health", matcher="200", interval=15,
                                                       healthy_threshold=2, unhealthy_threshold=3),
            tags=spec.all_tags, opts=self.child)
        listener = lb.Listener(
            f"{prefix}-mlflow", load_balancer_arn=balancer.arn, port=HTTP, protocol="HTTP",
            default_actions=[lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)],
            tags=spec.all_tags, opts=self.child)
        return balancer, target_group, listener

    def _service(self, task_sg: Any, secret_arn: pulumi.Output[str], backend_url: pulumi.Output[str],
                 balancer: lb.LoadBalancer, target_group: lb.TargetGroup, prerequisites: list[pulumi.Resource]) -> None:
        """MLflow on Fargate: a leader service of one task that migrates the schema, then (highly available) a
        replica service. Both wait for `prerequisites` (listener, database, the secret's value) and for steady
        state, so `pulumi up` fails when MLflow does not come up; ECS Exec lets operators forward a port."""
        spec, base, prefix = self.spec, self.base, self.spec.prefix
        logs = cloudwatch.LogGroup(f"{prefix}-mlflow", name=f"/shipyard/{prefix}/mlflow",
                                   retention_in_days=LOG_RETENTION_DAYS[spec.is_prod], kms_key_id=base.key.arn,
                                   tags=spec.all_tags, opts=self.child)
        execution = aws_iam.Role(aws_name(prefix, "mlflow-execution", kind="iam_role", autonamed=True),
                                 tags=spec.all_tags, opts=self.child,
                                 assume_role_policy=iam.to_json(iam.assume_role("ecs-tasks.amazonaws.com")))
        aws_iam.RolePolicy(f"{prefix}-mlflow-execution", role=execution.id, opts=self.child, policy=iam.policy_json(
            lambda repo, log_arn, secret, key: iam.document([
                *iam.ecr_pull(repo), iam.logs_write([log_arn]),
                iam.read_secrets([secret]), iam.kms_use(key)]),
            base.repository_arn, logs.arn, secret_arn, base.key.arn))
        task = aws_iam.Role(aws_name(prefix, "mlflow-task", kind="iam_role", autonamed=True),
                            tags=spec.all_tags, opts=self.child,
                            assume_role_policy=iam.to_json(iam.assume_role("ecs-tasks.amazonaws.com")))
        aws_iam.RolePolicy(f"{prefix}-mlflow-task", role=task.id, opts=self.child, policy=iam.policy_json(
            lambda bucket, key: iam.document([*iam.s3_access(bucket, read=[PREFIXES["mlflow"]]), iam.kms_use(key),
                                              iam.exec_channels()]),
            self.bucket.arn, base.key.arn))
        fargate = size(spec.registry.server_size)

        def definition(name: str, migrate: bool) -> ecs.TaskDefinition:
            return ecs.TaskDefinition(
                name, family=name, network_mode="awsvpc", requires_compatibilities=["FARGATE"],
                cpu=str(fargate.fargate_cpu), memory=str(fargate.fargate_memory),
                runtime_platform=ecs.TaskDefinitionRuntimePlatformArgs(operating_system_family="LINUX",
                                                                       cpu_architecture="X86_64"),
                execution_role_arn=execution.arn, task_role_arn=task.arn, tags=spec.all_tags, opts=self.child,
                container_definitions=pulumi.Output.all(base.image, logs.name, self.artifact_uri, backend_url,
                                                        balancer.dns_name).apply(
                    lambda v: iam.to_json(mlflow_containers(
                        image=v[0], region=base.region, log_group=v[1], artifact_root=v[2],
                        workers=spec.registry.workers, backend_secret=v[3], allowed_hosts=[v[4], f"{v[4]}:{HTTP}"],
                        migrate=migrate))))

        cluster = ecs.Cluster(f"{prefix}-mlflow", name=aws_name(prefix, "mlflow", kind="ecs"), tags=spec.all_tags,
                              settings=[ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
                              opts=self.child)

        def service(name: str, task_definition: ecs.TaskDefinition, count: int, after: list[pulumi.Resource],
                    grace_seconds: int) -> ecs.Service:
            return ecs.Service(
                name, cluster=cluster.arn, task_definition=task_definition.arn, launch_type="FARGATE",
                desired_count=count, deployment_minimum_healthy_percent=100, deployment_maximum_percent=200,
                deployment_circuit_breaker=ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
                wait_for_steady_state=True, enable_execute_command=True,
                network_configuration=ecs.ServiceNetworkConfigurationArgs(
                    subnets=base.network.subnet_ids, security_groups=[task_sg.id], assign_public_ip=False),
                load_balancers=[ecs.ServiceLoadBalancerArgs(target_group_arn=target_group.arn,
                                                            container_name="mlflow", container_port=MLFLOW_PORT)],
                health_check_grace_period_seconds=grace_seconds, propagate_tags="SERVICE", tags=spec.all_tags,
                opts=pulumi.ResourceOptions.merge(self.child, pulumi.ResourceOptions(depends_on=after)))

        leaders, replicas = service_counts(spec.registry.database.high_availability)
        leader = service(f"{prefix}-mlflow", definition(f"{prefix}-mlflow", migrate=True), leaders, prerequisites,
                         MIGRATION_GRACE_SECONDS)
        if replicas:
            service(f"{prefix}-mlflow-replicas", definition(f"{prefix}-mlflow-replica", migrate=False), replicas,
                    [*prerequisites, leader], SERVER_GRACE_SECONDS)
        self.tracking_access_policy = self._tracking_access(cluster).arn

    def _tracking_access(self, cluster: ecs.Cluster) -> aws_iam.Policy:
        """The managed policy CD and people attach to reach MLflow by SSM port forwarding into its tasks."""
        spec, base = self.spec, self.base
        return aws_iam.Policy(
            aws_name(spec.prefix, "tracking-access", kind="iam_policy", autonamed=True),
            description=f"{spec.prefix}: forward a local port to the MLflow tracking server (SSM, ECS Exec)",
            tags=spec.all_tags, opts=self.child, policy=iam.policy_json(
                lambda acct, cluster_arn, cluster_name: iam.document(
                    iam.port_forwarding(base.region, acct, cluster_arn, cluster_name)),
                base.account, cluster.arn, cluster.name))
