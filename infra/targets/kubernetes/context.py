"""What every Kubernetes component shares: the spec, the package, the namespace, and small declarators
for the objects each workload has (ServiceAccount, Service, NetworkPolicy, PVC, Secret, Job, CronJob) with the
house labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_kubernetes.batch.v1 import CronJob, CronJobSpecArgs, JobSpecArgs, JobTemplateSpecArgs
from pulumi_kubernetes.core.v1 import (
    PersistentVolumeClaim,
    PersistentVolumeClaimSpecArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    Secret,
    Service,
    ServiceAccount,
    ServicePortArgs,
    ServiceSpecArgs,
    VolumeResourceRequirementsArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import NetworkPolicy

from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets.kubernetes.labels import Workload
from infra.targets.kubernetes.network import Policy, policy_spec
from infra.targets.kubernetes.profile import ClusterProfile, Placement


@dataclass(frozen=True)
class Context:
    """The platform-wide facts a component needs. `namespace` is the Namespace resource's name output,
    so every namespaced object depends on the Namespace; `namespace_name` is the same name, plain. `image` is
    what every runtime container runs (the pinned image, the pushed digest, or the cluster profile's),
    `image_identity` a plain string that changes with it, `pull_secret` the name of the Secret pods pull it with
    (None: no credentials). `profile` holds what a cloud's cluster profile changes (nothing, on the Kubernetes
    target)."""

    spec: PlatformSpec
    package: PipelinePackage
    namespace: pulumi.Output[str]
    namespace_name: str
    data_claim: pulumi.Output[str]
    secrets: SecretValues
    image: pulumi.Input[str]
    image_identity: str
    pull_secret: pulumi.Input[str] | None = None
    profile: ClusterProfile = field(default_factory=ClusterProfile)

    @property
    def object_store(self) -> bool:
        """Whether MLflow's artifacts live in an object store (an S3 endpoint, or the cloud profile's store)."""
        return bool(self.spec.registry.artifacts.s3_endpoint) or self.profile.artifacts is not None

    def placement(self, component: str) -> Placement | None:
        """Where pods of `component` (`app.kubernetes.io/component`) run: the profile's node pool, else anywhere."""
        return self.profile.placement.get(component)

    @property
    def platform_version(self) -> str:
        """The platform's release (the package version without its content hash)."""
        return self.package.version.split("+", 1)[0]

    def workload(self, name: str, component: str, model: str | None = None, runs_pipelines: bool = False) -> Workload:
        """The identity of a workload; those running the wheel carry its version (content hash included)."""
        instance = f"{self.spec.prefix}-{model}" if model else self.spec.prefix
        version = self.package.version if runs_pipelines else self.platform_version
        return Workload(name=name, instance=instance, component=component, part_of=self.spec.name, version=version)

    def meta(self, name: pulumi.Input[str], workload: Workload,
             annotations: Mapping[str, pulumi.Input[str]] | None = None) -> ObjectMetaArgs:
        """Metadata of a namespaced object: its explicit name, the namespace, the workload's labels."""
        return ObjectMetaArgs(name=name, namespace=self.namespace, labels=workload.labels,
                              annotations=dict(annotations) if annotations else None)

    def pod_meta(self, workload: Workload, annotations: Mapping[str, str] | None = None) -> ObjectMetaArgs:
        """Metadata of a pod template: labels (with the profile's for this workload) and annotations only (pods
        are named by their controller)."""
        labels = {**workload.labels, **self.profile.pod_labels.get(workload.name, {})}
        return ObjectMetaArgs(labels=labels, annotations=dict(annotations) if annotations else None)


def service_account(ctx: Context, resource_name: str, name: str, workload: Workload,
                    opts: pulumi.ResourceOptions, automount_token: bool = False) -> ServiceAccount:
    """A workload's own ServiceAccount, annotated as the cluster profile asks (workload identity); its API token
    is mounted only when `automount_token`."""
    return ServiceAccount(resource_name, metadata=ctx.meta(name, workload, ctx.profile.account_annotations.get(name)),
                          automount_service_account_token=automount_token, opts=opts)


def service(ctx: Context, resource_name: str, name: str, workload: Workload, ports: Sequence[tuple[str, int]],
            opts: pulumi.ResourceOptions, headless: bool = False,
            annotations: Mapping[str, str] | None = None) -> Service:
    """A ClusterIP (or headless) Service over a workload's pods; `ports` are (name, port) pairs."""
    return Service(resource_name, metadata=ctx.meta(name, workload, annotations), spec=ServiceSpecArgs(
        type="ClusterIP",
        cluster_ip="None" if headless else None,
        selector=workload.selector,
        ports=[ServicePortArgs(name=port_name, port=port, target_port=port_name, protocol="TCP")
               for port_name, port in ports],
    ), opts=opts)


def network_policy(ctx: Context, resource_name: str, policy: Policy, workload: Workload,
                   opts: pulumi.ResourceOptions) -> NetworkPolicy:
    """A NetworkPolicy from its plain-data description."""
    return NetworkPolicy(resource_name, metadata=ctx.meta(policy.name, workload), spec=policy_spec(policy), opts=opts)


def claim(ctx: Context, resource_name: str, name: str, workload: Workload, size_gb: int, access_mode: str,
          opts: pulumi.ResourceOptions) -> PersistentVolumeClaim:
    """A PersistentVolumeClaim on the spec's storage class (the cluster default when unset); a ReadWriteMany
    claim on the shared storage class (`layout.data_access_mode` asks for one only when the spec names it)."""
    k8s = ctx.spec.k8s
    return PersistentVolumeClaim(resource_name, metadata=ctx.meta(name, workload), spec=PersistentVolumeClaimSpecArgs(
        access_modes=[access_mode],
        storage_class_name=k8s.shared_storage_class if access_mode == "ReadWriteMany" else k8s.storage_class,
        resources=VolumeResourceRequirementsArgs(requests={"storage": f"{size_gb}Gi"}),
    ), opts=opts)


def secret(ctx: Context, resource_name: str, name: str, workload: Workload,
           string_data: Mapping[str, pulumi.Input[str]], opts: pulumi.ResourceOptions) -> Secret:
    """An Opaque Secret; every value is wrapped as a Pulumi secret so it never shows in state or plans."""
    return Secret(resource_name, metadata=ctx.meta(name, workload), type="Opaque",
                  string_data={k: pulumi.Output.secret(v) for k, v in string_data.items()}, opts=opts)


def job_spec(ctx: Context, workload: Workload, pod: PodSpecArgs, *, backoff_limit: int, deadline_seconds: int,
             ttl_seconds: int | None) -> JobSpecArgs:
    """A Job running `pod` once: at most `backoff_limit` retries, killed after `deadline_seconds`, deleted
    `ttl_seconds` after it finishes (`None`: kept)."""
    return JobSpecArgs(backoff_limit=backoff_limit, active_deadline_seconds=deadline_seconds,
                       ttl_seconds_after_finished=ttl_seconds,
                       template=PodTemplateSpecArgs(metadata=ctx.pod_meta(workload), spec=pod))


def cron_job(ctx: Context, resource_name: str, name: str, workload: Workload, schedule: str, job: JobSpecArgs,
             opts: pulumi.ResourceOptions, *, starting_deadline_seconds: int, successful_history: int) -> CronJob:
    """A CronJob running `job` on `schedule` in UTC, never two runs at once; a run that cannot start within
    `starting_deadline_seconds` of its time is skipped; the last `successful_history` successful and 3 failed
    Jobs are kept for their logs."""
    return CronJob(resource_name, metadata=ctx.meta(name, workload), spec=CronJobSpecArgs(
        schedule=schedule,
        time_zone="Etc/UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=starting_deadline_seconds,
        successful_jobs_history_limit=successful_history,
        failed_jobs_history_limit=3,
        job_template=JobTemplateSpecArgs(metadata=ObjectMetaArgs(labels=workload.labels), spec=job),
    ), opts=opts)


def stateful(opts: pulumi.ResourceOptions, spec: PlatformSpec) -> pulumi.ResourceOptions:
    """Options for state that must survive: protected and retained on delete when the spec says so (prod)."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
        protect=spec.protect, retain_on_delete=spec.protect))
