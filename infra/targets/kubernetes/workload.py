"""Pod and container builders shared by every workload: security contexts, probes, scheduling, and the one
"install the wheel, then run the pipelines" pod that training, serving and monitoring all use.

The pipelines code is not in the image: an init container installs the wheel from its immutable ConfigMap
into an emptyDir (`pip install --no-deps --no-index --target`), and the main container imports it from
there (PYTHONPATH) with the image's dependencies. Root filesystems stay read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.core.v1 import (
    AffinityArgs,
    CapabilitiesArgs,
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    EnvVarSourceArgs,
    ExecActionArgs,
    HTTPGetActionArgs,
    KeyToPathArgs,
    LocalObjectReferenceArgs,
    NodeAffinityArgs,
    NodeSelectorRequirementArgs,
    NodeSelectorTermArgs,
    PersistentVolumeClaimVolumeSourceArgs,
    PodSecurityContextArgs,
    PodSpecArgs,
    PreferredSchedulingTermArgs,
    ProbeArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    SecretKeySelectorArgs,
    SecurityContextArgs,
    TCPSocketActionArgs,
    TolerationArgs,
    VolumeArgs,
    VolumeMountArgs,
)

from infra.targets.kubernetes import layout
from infra.targets.kubernetes.sizes import GPU_RESOURCE, TINY, resources

#: Conventional node labels of spot / preemptible capacity, by provisioner. Training prefers such nodes.
SPOT_NODE_LABELS: tuple[tuple[str, str], ...] = (
    ("karpenter.sh/capacity-type", "spot"),
    ("eks.amazonaws.com/capacityType", "SPOT"),
    ("cloud.google.com/gke-spot", "true"),
    ("kubernetes.azure.com/scalesetpriority", "spot"),
)
#: Taints that providers put on spot nodes (AKS always, GKE when asked): training tolerates them.
SPOT_TAINTS: tuple[tuple[str, str], ...] = (
    ("kubernetes.azure.com/scalesetpriority", "spot"),
    ("cloud.google.com/gke-spot", "true"),
)


def pod_security(fs_group: bool = True) -> PodSecurityContextArgs:
    """The pod-level security context: non-root uid 10001, RuntimeDefault seccomp, volumes owned by its group."""
    return PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=layout.RUNTIME_UID,
        run_as_group=layout.RUNTIME_UID,
        fs_group=layout.RUNTIME_UID if fs_group else None,
        fs_group_change_policy="OnRootMismatch" if fs_group else None,
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security() -> SecurityContextArgs:
    """The container-level security context: read-only root, no privilege escalation, no capabilities."""
    return SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=layout.RUNTIME_UID,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


def empty_dir(name: str, size_limit: str = "256Mi") -> VolumeArgs:
    """A scratch volume, bounded so a runaway writer cannot fill the node's disk."""
    return VolumeArgs(name=name, empty_dir=EmptyDirVolumeSourceArgs(size_limit=size_limit))


def claim_volume(name: str, claim: str, read_only: bool = False) -> VolumeArgs:
    """A volume backed by an existing PersistentVolumeClaim."""
    return VolumeArgs(name=name, persistent_volume_claim=PersistentVolumeClaimVolumeSourceArgs(
        claim_name=claim, read_only=read_only or None))


def mount(name: str, path: str, read_only: bool = False) -> VolumeMountArgs:
    """A volume mount."""
    return VolumeMountArgs(name=name, mount_path=path, read_only=read_only or None)


def env(name: str, value: str) -> EnvVarArgs:
    """A plain environment variable."""
    return EnvVarArgs(name=name, value=value)


def secret_env(name: str, secret: pulumi.Input[str], key: str) -> EnvVarArgs:
    """An environment variable read from a Secret's key (the value never appears in the pod spec)."""
    return EnvVarArgs(name=name, value_from=EnvVarSourceArgs(
        secret_key_ref=SecretKeySelectorArgs(name=secret, key=key)))


def http_probe(path: str, port: int | str, *, period: int = 10, failures: int = 3) -> ProbeArgs:
    """An HTTP GET probe."""
    return ProbeArgs(http_get=HTTPGetActionArgs(path=path, port=port), period_seconds=period,
                     timeout_seconds=5, failure_threshold=failures)


def tcp_probe(port: int | str, *, period: int = 10) -> ProbeArgs:
    """A TCP connect probe."""
    return ProbeArgs(tcp_socket=TCPSocketActionArgs(port=port), period_seconds=period, timeout_seconds=5)


def exec_probe(command: Sequence[str], *, period: int = 10, failures: int = 3) -> ProbeArgs:
    """A probe that runs a command in the container."""
    return ProbeArgs(exec_=ExecActionArgs(command=list(command)), period_seconds=period,
                     timeout_seconds=5, failure_threshold=failures)


def scheduling(spot: bool, gpus: int) -> tuple[list[TolerationArgs] | None, AffinityArgs | None]:
    """(tolerations, affinity) for a pod: prefer spot nodes and tolerate their taints; tolerate GPU taints.

    Spot is a preference, not a requirement: a cluster without spot capacity still runs the pod.
    """
    tolerations: list[TolerationArgs] = []
    affinity = None
    if spot:
        tolerations += [TolerationArgs(key=key, operator="Equal", value=value, effect="NoSchedule")
                        for key, value in SPOT_TAINTS]
        affinity = AffinityArgs(node_affinity=NodeAffinityArgs(
            preferred_during_scheduling_ignored_during_execution=[
                PreferredSchedulingTermArgs(weight=100, preference=NodeSelectorTermArgs(match_expressions=[
                    NodeSelectorRequirementArgs(key=key, operator="In", values=[value])]))
                for key, value in SPOT_NODE_LABELS
            ]))
    if gpus:
        tolerations.append(TolerationArgs(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule"))
    return tolerations or None, affinity


def pod_spec(
    containers: Sequence[ContainerArgs],
    *,
    service_account: pulumi.Input[str],
    volumes: Sequence[VolumeArgs] = (),
    init_containers: Sequence[ContainerArgs] = (),
    automount_token: bool = False,
    restart_policy: str | None = None,
    spot: bool = False,
    gpus: int = 0,
    fs_group: bool = True,
    pull_secret: pulumi.Input[str] | None = None,
) -> PodSpecArgs:
    """A pod spec with the house defaults: its own ServiceAccount, no API token unless asked, non-root;
    `pull_secret` names the Secret the kubelet pulls private images with."""
    tolerations, affinity = scheduling(spot, gpus)
    return PodSpecArgs(
        containers=list(containers),
        image_pull_secrets=[LocalObjectReferenceArgs(name=pull_secret)] if pull_secret is not None else None,
        init_containers=list(init_containers) or None,
        volumes=list(volumes) or None,
        service_account_name=service_account,
        automount_service_account_token=automount_token,
        enable_service_links=False,
        restart_policy=restart_policy,
        security_context=pod_security(fs_group),
        tolerations=tolerations,
        affinity=affinity,
    )


@dataclass(frozen=True)
class PipelinesRuntime:
    """What a pod running the pipelines for one model needs: the image (and the Secret it is pulled with), the
    wheel, the model's run configuration."""

    image: pulumi.Input[str]
    wheel_configmap: pulumi.Input[str]
    wheel_filename: str
    config_configmap: pulumi.Input[str]
    model: str
    pull_secret: pulumi.Input[str] | None = None

    @property
    def config_path(self) -> str:
        """The run configuration's path inside the pod."""
        return layout.config_file(self.model)


#: Environment of every container running Python from the runtime image with a read-only root filesystem.
PYTHON_ENV: tuple[tuple[str, str], ...] = (
    ("HOME", layout.TMP_DIR),
    ("MPLCONFIGDIR", f"{layout.TMP_DIR}/matplotlib"),
    ("PYTHONUNBUFFERED", "1"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
    ("PIP_NO_CACHE_DIR", "1"),
    ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
)


def python_env(*extra: EnvVarArgs) -> list[EnvVarArgs]:
    """`PYTHON_ENV` plus `extra`."""
    return [env(name, value) for name, value in PYTHON_ENV] + list(extra)


def install_wheel_container(runtime: PipelinesRuntime) -> ContainerArgs:
    """The init container: install the shipped wheel, without dependencies or network, into the site emptyDir."""
    return ContainerArgs(
        name="install-pipelines",
        image=runtime.image,
        command=["python", "-m", "pip", "install", "--no-deps", "--no-index", "--target", layout.SITE_DIR,
                 f"{layout.WHEEL_DIR}/{runtime.wheel_filename}"],
        env=python_env(),
        resources=resources(TINY),
        security_context=container_security(),
        volume_mounts=[mount("wheel", layout.WHEEL_DIR, read_only=True), mount("site", layout.SITE_DIR),
                       mount("tmp", layout.TMP_DIR)],
    )


def pipelines_volumes(runtime: PipelinesRuntime) -> list[VolumeArgs]:
    """The wheel and run-configuration ConfigMaps, the site dir the wheel is installed into, and /tmp."""
    return [
        VolumeArgs(name="wheel", config_map=ConfigMapVolumeSourceArgs(
            name=runtime.wheel_configmap,
            items=[KeyToPathArgs(key=layout.WHEEL_KEY, path=runtime.wheel_filename)])),
        VolumeArgs(name="config", config_map=ConfigMapVolumeSourceArgs(name=runtime.config_configmap)),
        empty_dir("site"),
        empty_dir("tmp", "1Gi"),
    ]


def pipelines_pod(
    runtime: PipelinesRuntime,
    step: str,
    *,
    service_account: pulumi.Input[str],
    container_resources: ResourceRequirementsArgs,
    args: Sequence[str] = (),
    extra_env: Sequence[EnvVarArgs] = (),
    ports: Sequence[ContainerPortArgs] = (),
    probes: dict[str, ProbeArgs] | None = None,
    data_volume: str | None = None,
    automount_token: bool = False,
    restart_policy: str | None = None,
    spot: bool = False,
    gpus: int = 0,
) -> PodSpecArgs:
    """A pod that installs the wheel, then runs `python -m pipelines STEP --config <model>.json ARGS`.

    `probes` maps `readiness` / `liveness` / `startup` to probes; `data_volume` mounts the shared data
    claim (inference logs, reports, metrics) at `layout.DATA_DIR`.
    """
    probes = probes or {}
    mounts = [mount("site", layout.SITE_DIR, read_only=True), mount("config", layout.CONFIG_DIR, read_only=True),
              mount("tmp", layout.TMP_DIR)]
    volumes = pipelines_volumes(runtime)
    if data_volume:
        mounts.append(mount("data", layout.DATA_DIR))
        volumes.append(claim_volume("data", data_volume))
    container = ContainerArgs(
        name=step,
        image=runtime.image,
        command=["python", "-m", "pipelines", step, "--config", runtime.config_path, *args],
        env=python_env(env("PYTHONPATH", layout.SITE_DIR), *extra_env),
        ports=list(ports) or None,
        resources=container_resources,
        security_context=container_security(),
        volume_mounts=mounts,
        readiness_probe=probes.get("readiness"),
        liveness_probe=probes.get("liveness"),
        startup_probe=probes.get("startup"),
    )
    return pod_spec([container], service_account=service_account, volumes=volumes,
                    init_containers=[install_wheel_container(runtime)], automount_token=automount_token,
                    restart_policy=restart_policy, spot=spot, gpus=gpus, pull_secret=runtime.pull_secret)
