"""Pod and container builders shared by every workload: security contexts, probes, scheduling, and the one
"install the wheel, then run the pipelines" pod that training, serving and monitoring all use.

Secrets reach containers only as files (`SecretFiles`, Checkov CKV_K8S_35): a program that wants an environment
variable gets it from a small `/bin/sh` wrapper reading the file when the container starts (`env_from_files`),
so no Secret appears in a pod spec's `env` or `envFrom`.

The pipelines code is not in the image: an init container installs the wheel from its immutable ConfigMap
into an emptyDir (`pip install --no-deps --no-index --target`), and the main container imports it from
there (PYTHONPATH) with the image's dependencies. Root filesystems stay read-only.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
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
    ExecActionArgs,
    HTTPGetActionArgs,
    KeyToPathArgs,
    LocalObjectReferenceArgs,
    NodeAffinityArgs,
    NodeSelectorRequirementArgs,
    NodeSelectorTermArgs,
    PersistentVolumeClaimVolumeSourceArgs,
    PodAffinityArgs,
    PodAffinityTermArgs,
    PodSecurityContextArgs,
    PodSpecArgs,
    PreferredSchedulingTermArgs,
    ProbeArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    SecretVolumeSourceArgs,
    SecurityContextArgs,
    TCPSocketActionArgs,
    TolerationArgs,
    TopologySpreadConstraintArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, LabelSelectorRequirementArgs

from infra.spec import PlatformSpec
from infra.targets.kubernetes import layout
from infra.targets.kubernetes.labels import label_value
from infra.targets.kubernetes.profile import Placement
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


#: Secret files are readable by their owner (root) and the pod's group (fsGroup 10001), by nobody else.
SECRET_FILE_MODE = 0o440


@dataclass(frozen=True)
class SecretFiles:
    """Keys of a Secret mounted read-only as files `<SECRETS_DIR>/<volume>/<key>` (only those keys)."""

    volume: str
    secret: pulumi.Input[str]
    keys: tuple[str, ...]

    def path(self, key: str) -> str:
        """The file holding `key`."""
        if key not in self.keys:
            raise KeyError(f"{key!r} is not mounted from the Secret volume {self.volume!r}")
        return f"{layout.SECRETS_DIR}/{self.volume}/{key}"

    def volume_args(self) -> VolumeArgs:
        """The pod's volume."""
        return VolumeArgs(name=self.volume, secret=SecretVolumeSourceArgs(
            secret_name=self.secret, default_mode=SECRET_FILE_MODE,
            items=[KeyToPathArgs(key=key, path=key) for key in self.keys]))

    def mount_args(self) -> VolumeMountArgs:
        """The container's read-only mount."""
        return mount(self.volume, f"{layout.SECRETS_DIR}/{self.volume}", read_only=True)


def env_from_files(command: Sequence[str], variables: Mapping[str, str]) -> list[str]:
    """`command`, run by `/bin/sh` after exporting each of `variables` (name -> file) with the file's content.

    A missing or unreadable file stops the container before `command` starts (`set -e`); the values live only
    in the process environment, never in the pod spec.
    """
    lines = ["set -e"]
    for name, path in variables.items():
        lines.append(f"{name}=\"$(cat {shlex.quote(path)})\"; export {name}")
    lines.append('exec "$@"')
    return ["/bin/sh", "-c", "\n".join(lines), command[0], *command]


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


def data_pod_affinity(spec: PlatformSpec) -> PodAffinityArgs | None:
    """For a pod mounting the shared data volume: on a ReadWriteOnce volume (`layout.data_access_mode`), run on the
    node of the platform's other such pods (`layout.DATA_COMPONENTS`), the node the volume is attached to; the first
    one matches its own term, so it goes anywhere. None (no constraint) on a ReadWriteMany volume."""
    if layout.data_access_mode(spec) != "ReadWriteOnce":
        return None
    selector = LabelSelectorArgs(
        match_labels={"app.kubernetes.io/part-of": label_value(spec.name)},
        match_expressions=[LabelSelectorRequirementArgs(key="app.kubernetes.io/component", operator="In",
                                                        values=list(layout.DATA_COMPONENTS))])
    return PodAffinityArgs(required_during_scheduling_ignored_during_execution=[
        PodAffinityTermArgs(topology_key=layout.SPREAD_TOPOLOGY_KEYS[0], label_selector=selector)])


def spread(selector: dict[str, str]) -> list[TopologySpreadConstraintArgs]:
    """Spread a workload's pods over nodes, then zones, as evenly as the cluster allows: a preference
    (`ScheduleAnyway`), so a one-node or zone-less cluster still schedules them; counted per ReplicaSet
    (`pod-template-hash`), so a rollout's new pods spread among themselves."""
    return [TopologySpreadConstraintArgs(max_skew=1, topology_key=key, when_unsatisfiable="ScheduleAnyway",
                                         label_selector=LabelSelectorArgs(match_labels=selector),
                                         match_label_keys=["pod-template-hash"])
            for key in layout.SPREAD_TOPOLOGY_KEYS]


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
    pod_affinity: PodAffinityArgs | None = None,
    topology_spread: Sequence[TopologySpreadConstraintArgs] = (),
    placement: Placement | None = None,
    pull_secret: pulumi.Input[str] | None = None,
) -> PodSpecArgs:
    """A pod spec with the house defaults: its own ServiceAccount, no API token unless asked, non-root;
    `pod_affinity` and `topology_spread` place it relative to other pods, `placement` on a node pool;
    `pull_secret` names the Secret the kubelet pulls private images with."""
    tolerations, affinity = scheduling(spot, gpus)
    if placement is not None:
        tolerations = [*(tolerations or []), *placement.toleration_args()] or None
    if pod_affinity is not None:
        affinity = AffinityArgs(node_affinity=affinity.node_affinity if affinity else None, pod_affinity=pod_affinity)
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
        node_selector=dict(placement.node_selector) if placement is not None else None,
        tolerations=tolerations,
        affinity=affinity,
        topology_spread_constraints=list(topology_spread) or None,
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
    data_volume: pulumi.Input[str] | None = None,
    secret_files: Sequence[SecretFiles] = (),
    automount_token: bool = False,
    restart_policy: str | None = None,
    spot: bool = False,
    gpus: int = 0,
    pod_affinity: PodAffinityArgs | None = None,
    topology_spread: Sequence[TopologySpreadConstraintArgs] = (),
    placement: Placement | None = None,
) -> PodSpecArgs:
    """A pod that installs the wheel, then runs `python -m pipelines STEP --config <model>.json ARGS`.

    `probes` maps `readiness` / `liveness` / `startup` to probes; `data_volume` mounts the shared data
    claim (inference logs, reports, metrics) at `layout.DATA_DIR`; `secret_files` are mounted read-only.
    """
    probes = probes or {}
    mounts = [mount("site", layout.SITE_DIR, read_only=True), mount("config", layout.CONFIG_DIR, read_only=True),
              mount("tmp", layout.TMP_DIR)]
    volumes = pipelines_volumes(runtime)
    if data_volume:
        mounts.append(mount("data", layout.DATA_DIR))
        volumes.append(claim_volume("data", data_volume))
    mounts += [files.mount_args() for files in secret_files]
    volumes += [files.volume_args() for files in secret_files]
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
                    restart_policy=restart_policy, spot=spot, gpus=gpus, pod_affinity=pod_affinity,
                    topology_spread=topology_spread, placement=placement, pull_secret=runtime.pull_secret)
