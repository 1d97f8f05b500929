"""What every Cloud Run workload of the platform shares: the image, the bucket mounted by Cloud Storage
FUSE, Direct VPC egress through the private subnet, resources from the size table, and the bootstrap
that installs the content-addressed wheel and runs one step.

A job's container runs `sh -c BOOTSTRAP shipyard <step> [args...]`: the Workflow (or Cloud Scheduler)
runs it with the step as the container's arguments, and the steps that hand something on (train ->
evaluate -> register) write it under `$SHIPYARD_STEP_DIR`, a directory of the mounted bucket unique to
the workflow execution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_gcp import cloudrunv2

from infra.spec import SizeClass
from infra.targets.gcp.sizes import GPU_ACCELERATOR, size
from infra.targets.gcp.storage import MOUNT

#: Every workload's traffic goes through the VPC: MLflow's internal ingress only admits it that way.
EGRESS = "ALL_TRAFFIC"
VOLUME = "artifacts"
PORT = 8080
_FIELD = "python -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])'"
#: The job bootstrap: install the wheel from the mounted bucket, then run the step given as arguments.
BOOTSTRAP = "\n".join([
    "set -eu",
    'python -m pip install --quiet --no-deps --no-index --target /tmp/shipyard-pipelines "$SHIPYARD_PACKAGE_DIR"/*.whl',
    "export PYTHONPATH=/tmp/shipyard-pipelines",
    'case "$1" in',
    '  train) mkdir -p "$SHIPYARD_STEP_DIR" && python -m pipelines train --json > "$SHIPYARD_STEP_DIR/train.json" ;;',
    f'  evaluate) exec python -m pipelines evaluate --run-id "$({_FIELD} "$SHIPYARD_STEP_DIR/train.json" run_id)" ;;',
    f'  register) python -m pipelines register --run-id "$({_FIELD} "$SHIPYARD_STEP_DIR/train.json" run_id)" --json'
    ' > "$SHIPYARD_STEP_DIR/register.json"'
    f' && exec python -m pipelines promote --version "$({_FIELD} "$SHIPYARD_STEP_DIR/register.json" version)" ;;',
    '  *) exec python -m pipelines "$@" ;;',
    "esac",
])


def step_dir(model: str, execution: str) -> str:
    """Where one workflow execution's steps hand files to each other (in the mounted bucket)."""
    return f"{MOUNT}/training/{model}/{execution}"


@dataclass(frozen=True)
class Workload:
    """One Cloud Run workload: image, account, network, the bucket mount, size, environment."""

    image: pulumi.Input[str]
    account: pulumi.Input[str]
    network: pulumi.Input[str]
    subnetwork: pulumi.Input[str]
    bucket: pulumi.Input[str]
    size: SizeClass
    env: dict[str, pulumi.Input[str]]
    secret_env: dict[str, pulumi.Input[str]]
    read_only: bool = True
    gpus: int = 0

    def limits(self) -> dict[str, str]:
        """CPU, memory and GPU limits from the size table."""
        row = size(self.size)
        out = {"cpu": row.cpu, "memory": row.memory}
        if self.gpus:
            out["nvidia.com/gpu"] = str(self.gpus)
        return out

    def envs(self, env_args: Any, source_args: Any, ref_args: Any) -> list[Any]:
        """Plain variables, then variables read from Secret Manager (latest version), in the SDK's classes."""
        plain = [env_args(name=k, value=v) for k, v in sorted(self.env.items())]
        secret = [env_args(name=k, value_source=source_args(secret_key_ref=ref_args(secret=v, version="latest")))
                  for k, v in sorted(self.secret_env.items())]
        return plain + secret


def service_template(w: Workload, *, args: pulumi.Input[list[str]], commands: list[str] | None = None,
                     min_instances: int, max_instances: int, probe_path: str) -> cloudrunv2.ServiceTemplateArgs:
    """A Cloud Run service revision template running `w` on port 8080, probed on `probe_path`."""
    return cloudrunv2.ServiceTemplateArgs(
        service_account=w.account, execution_environment="EXECUTION_ENVIRONMENT_GEN2",
        scaling=cloudrunv2.ServiceTemplateScalingArgs(min_instance_count=min_instances,
                                                      max_instance_count=max_instances),
        vpc_access=cloudrunv2.ServiceTemplateVpcAccessArgs(egress=EGRESS, network_interfaces=[
            cloudrunv2.ServiceTemplateVpcAccessNetworkInterfaceArgs(network=w.network, subnetwork=w.subnetwork)]),
        node_selector=cloudrunv2.ServiceTemplateNodeSelectorArgs(accelerator=GPU_ACCELERATOR) if w.gpus else None,
        gpu_zonal_redundancy_disabled=True if w.gpus else None,
        volumes=[cloudrunv2.ServiceTemplateVolumeArgs(name=VOLUME, gcs=cloudrunv2.ServiceTemplateVolumeGcsArgs(
            bucket=w.bucket, read_only=w.read_only))],
        containers=[cloudrunv2.ServiceTemplateContainerArgs(
            image=w.image, commands=commands, args=args,
            ports=cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=PORT),
            envs=w.envs(cloudrunv2.ServiceTemplateContainerEnvArgs,
                        cloudrunv2.ServiceTemplateContainerEnvValueSourceArgs,
                        cloudrunv2.ServiceTemplateContainerEnvValueSourceSecretKeyRefArgs),
            resources=cloudrunv2.ServiceTemplateContainerResourcesArgs(limits=w.limits(), cpu_idle=not w.gpus,
                                                                       startup_cpu_boost=True),
            startup_probe=cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
                http_get=cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(path=probe_path, port=PORT),
                initial_delay_seconds=5, period_seconds=10, failure_threshold=30, timeout_seconds=5),
            volume_mounts=[cloudrunv2.ServiceTemplateContainerVolumeMountArgs(name=VOLUME, mount_path=MOUNT)])])


def job_template(w: Workload, *, args: list[str], timeout_seconds: int, max_retries: int) -> cloudrunv2.JobTemplateArgs:
    """A Cloud Run job template running `BOOTSTRAP` with `args` (the step) by default."""
    return cloudrunv2.JobTemplateArgs(task_count=1, parallelism=1, template=cloudrunv2.JobTemplateTemplateArgs(
        service_account=w.account, timeout=f"{timeout_seconds}s", max_retries=max_retries,
        execution_environment="EXECUTION_ENVIRONMENT_GEN2",
        vpc_access=cloudrunv2.JobTemplateTemplateVpcAccessArgs(egress=EGRESS, network_interfaces=[
            cloudrunv2.JobTemplateTemplateVpcAccessNetworkInterfaceArgs(network=w.network, subnetwork=w.subnetwork)]),
        node_selector=cloudrunv2.JobTemplateTemplateNodeSelectorArgs(accelerator=GPU_ACCELERATOR) if w.gpus else None,
        gpu_zonal_redundancy_disabled=True if w.gpus else None,
        volumes=[cloudrunv2.JobTemplateTemplateVolumeArgs(name=VOLUME, gcs=cloudrunv2.JobTemplateTemplateVolumeGcsArgs(
            bucket=w.bucket, read_only=w.read_only))],
        containers=[cloudrunv2.JobTemplateTemplateContainerArgs(
            image=w.image, commands=["sh", "-c", BOOTSTRAP, "shipyard"], args=args,
            envs=w.envs(cloudrunv2.JobTemplateTemplateContainerEnvArgs,
                        cloudrunv2.JobTemplateTemplateContainerEnvValueSourceArgs,
                        cloudrunv2.JobTemplateTemplateContainerEnvValueSourceSecretKeyRefArgs),
            resources=cloudrunv2.JobTemplateTemplateContainerResourcesArgs(limits=w.limits()),
            volume_mounts=[cloudrunv2.JobTemplateTemplateContainerVolumeMountArgs(name=VOLUME, mount_path=MOUNT)])]))
