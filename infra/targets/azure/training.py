"""Training on Azure: the pipelines wheel and each model's run configuration in blob storage, and per model a
scheduled Container Apps job running the whole pipeline (`python -m pipelines run`).

The wheel goes to `packages/<sha256>/<wheel>` and each run configuration to `packages/configs/<model>/<hash>/
run.json` (content-addressed: an unchanged tree uploads nothing and changes no job). The job's container
fetches the wheel with its managed identity and installs it before running (`BOOTSTRAP` in
`pipelines.adapters.azure`). `gpu` runs on the serverless GPU workload profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import app, authorization

from infra.components import TrainingCluster
from infra.packaging import PipelinePackage
from infra.runconfig import content_key, pipeline_config_text
from infra.spec import ModelSpec, PlatformSpec
from infra.targets.azure import iam, layout, upload
from infra.targets.azure.foundation import Foundation
from infra.targets.azure.registry import AzureModelRegistry
from infra.targets.azure.sizes import replica
from pipelines.adapters.azure import bootstrap_command

PACKAGES = layout.CONTAINERS["packages"]


def blob_uri(container: str, path: str) -> str:
    """An `az://` URI (adlfs takes the account from AZURE_STORAGE_ACCOUNT_NAME)."""
    return f"az://{container}/{path}"


def job_id(subscription: str, group: str, name: str) -> str:
    """The resource id of a Container Apps job (known before the job exists: run configs name it)."""
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.App/jobs/{name}"


def run_config_text(spec: PlatformSpec, model: ModelSpec, *, tracking_uri: str, insights_id: str,
                    training_job: str) -> str:
    """The run configuration of `model` on Azure, as stable JSON.

    Metrics go to Azure Monitor on the platform's Application Insights; when the spec allows it the monitor
    starts retraining itself, through the Container Apps jobs API on the model's training job.
    """
    return pipeline_config_text(
        spec, model, tracking_uri=tracking_uri,
        inference_log_uri=blob_uri(layout.CONTAINERS["inference"], model.name),
        reports_uri=blob_uri(layout.CONTAINERS["reports"], model.name),
        sinks=[f"azure-monitor:{insights_id}"],
        retrain=f"container-apps-job:{training_job}" if model.monitoring.retrain_on_drift else "none")



@dataclass
class RunConfigBlob:
    """One model's uploaded run configuration."""

    uri: pulumi.Output[str]
    upload: upload.Blob


class AzureTrainingCluster(TrainingCluster):
    """The wheel, the run configurations, and per model a scheduled Container Apps training job."""

    run_configs: dict[str, RunConfigBlob]
    jobs: dict[str, app.Job]
    job_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, spec: PlatformSpec, package: PipelinePackage, base: Foundation,
                 registry: AzureModelRegistry, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.spec, self.base, self.registry = spec, base, registry
        key = f"{package.sha256}/{package.filename}"
        self.wheel = upload.Blob(
            f"{spec.prefix}-wheel", account=registry.account_name, container=PACKAGES, blob=key,
            sha256=package.sha256, path=str(package.path), content_type="application/zip",
            metadata={"sha256": package.sha256, "version": package.version},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[registry.containers["packages"]]))
        self.package_uri = pulumi.Output.from_input(blob_uri(PACKAGES, key))
        self.cluster_name = base.environment.name
        self.identity = base.workload("training")
        for container, role in (("packages", "blob_reader"), ("data", "blob_reader"), ("mlflow", "blob_contributor")):
            registry.grant(container, self.identity, role)
        self.job_ids = {m.name: pulumi.Output.all(base.subscription, base.group_name).apply(
            lambda v, m=m: job_id(v[0], v[1], layout.training_job(spec, m.name))) for m in spec.models}
        self.run_configs = {m.name: self._run_config(m) for m in spec.models}
        self.jobs = {m.name: self._job(m) for m in spec.models}
        self.start_role = authorization.RoleDefinition(
            f"{spec.prefix}-start-training", role_definition_id=iam.stable_guid(spec.prefix, "start-training"),
            role_name=f"{spec.prefix} start training jobs", scope=base.group_id, assignable_scopes=[base.group_id],
            description="start this platform's training jobs (given to its drift monitors, one job each)",
            permissions=[authorization.PermissionArgs(actions=list(iam.START_JOB_ACTIONS))], opts=self.child)
        self.done(jobs={name: job.name for name, job in self.jobs.items()},
                  run_configs={name: c.uri for name, c in self.run_configs.items()})

    def _run_config(self, model: ModelSpec) -> RunConfigBlob:
        text = pulumi.Output.all(self.registry.tracking_uri, self.base.insights.id, self.job_ids[model.name]).apply(
            lambda v: run_config_text(self.spec, model, tracking_uri=v[0], insights_id=v[1], training_job=v[2]))
        key = text.apply(lambda t: content_key(f"configs/{model.name}", "run.json", t))
        blob = upload.Blob(f"{self.spec.prefix}-config-{model.name}", account=self.registry.account_name,
                           container=PACKAGES, blob=key, sha256=text.apply(upload.sha256_text), text=text,
                           content_type="application/json",
                           opts=pulumi.ResourceOptions(parent=self,
                                                       depends_on=[self.registry.containers["packages"]]))
        return RunConfigBlob(uri=key.apply(lambda k: blob_uri(PACKAGES, k)), upload=blob)

    def _job(self, model: ModelSpec) -> app.Job:
        spec, base = self.spec, self.base
        cpu, memory, profile = replica(spec.training.size, spec.azure_settings.gpu_workload_profile)
        command = pulumi.Output.all(self.package_uri, self.run_configs[model.name].uri).apply(
            lambda v: bootstrap_command(v[0], "run", "--config", v[1], "--reason", "schedule"))
        return container_job(
            f"{spec.prefix}-train-{model.name}", layout.training_job(spec, model.name), base, self.identity,
            cron=spec.training.schedule, timeout_seconds=spec.training.time_limit_minutes * 60, command=command,
            cpu=cpu, memory=memory, profile=profile, account=self.registry.account_name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.identity.grants, self.wheel,
                                                                 self.run_configs[model.name].upload]))


def container_job(name: str, physical: str, base: Foundation, workload: iam.Workload, *, cron: str,
                  timeout_seconds: int, command: pulumi.Input[list[str]], cpu: float, memory: str, profile: str,
                  account: pulumi.Input[str], opts: pulumi.ResourceOptions) -> app.Job:
    """A scheduled Container Apps job running the runtime image under one workload's identity."""
    return app.Job(
        name, job_name=physical, resource_group_name=base.group_name, location=base.location,
        environment_id=base.environment.id, workload_profile_name=profile, tags=base.tags, opts=opts,
        identity=app.ManagedServiceIdentityArgs(type="UserAssigned", user_assigned_identities=[workload.id]),
        configuration=app.JobConfigurationArgs(
            trigger_type="Schedule", replica_timeout=timeout_seconds, replica_retry_limit=1,
            schedule_trigger_config=app.JobConfigurationScheduleTriggerConfigArgs(
                cron_expression=cron, parallelism=1, replica_completion_count=1),
            registries=[app.RegistryCredentialsArgs(server=base.registry.login_server, identity=workload.id)]),
        template=app.JobTemplateArgs(containers=[app.ContainerArgs(
            name="pipeline", image=base.image, command=command, env=base.runtime_env(account, workload.client_id),
            resources=app.ContainerResourcesArgs(cpu=cpu, memory=memory))]))
