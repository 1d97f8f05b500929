"""Training on GCP: the wheel and run configurations in GCS, per model two Cloud Run jobs (the steps, and
`train` on its own so only it gets a GPU), a Workflow chaining validate-data -> train -> evaluate ->
register (which promotes what passed the gates), and a Cloud Scheduler job starting it on the schedule.

The wheel goes to `packages/<sha256>/<wheel>` and each model's run configuration to
`configs/<model>/<hash>/run.json` (content-addressed: unchanged code changes no job). Jobs run as the
training account (reads its prefixes, writes MLflow artifacts and the hand-over files); the Workflow runs
as its own account that may only run these jobs; Cloud Scheduler's account may only start these workflows.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_gcp import cloudrunv2, cloudscheduler, projects, storage, workflows

from infra.components import TrainingCluster
from infra.packaging import PipelinePackage
from infra.runconfig import content_key, pipeline_config_text
from infra.spec import ModelSpec, PlatformSpec
from infra.targets.gcp import dashboards
from infra.targets.gcp.foundation import Foundation, after
from infra.targets.gcp.names import gcp_name
from infra.targets.gcp.registry import GcpModelRegistry
from infra.targets.gcp.rules import scheduler_cron
from infra.targets.gcp.storage import MOUNT
from infra.targets.gcp.workload import Workload, job_template, step_dir
from infra.targets.objectstore import PREFIXES
from pipelines.adapters.gcp import SCOPE, WORKFLOWS_ENDPOINT, execution_request

STEPS = ("validate-data", "train", "evaluate", "register")
RUN_JOB = "googleapis.run.v2.projects.locations.jobs.run"
WORKFLOW_INVOKER = "roles/workflows.invoker"
JOB_RUNNER = "roles/run.jobsExecutorWithOverrides"


def run_config_text(spec: PlatformSpec, model: ModelSpec, *, tracking_uri: str, bucket: str) -> str:
    """The run configuration of `model` on GCP, as stable JSON.

    Metrics go to Cloud Monitoring; `retrain` is `none` because on GCP retraining is alert-driven: the drift
    alert opens one incident per drift episode, which starts the training workflow through Pub/Sub and Eventarc.
    """
    return pipeline_config_text(
        spec, model, tracking_uri=tracking_uri,
        inference_log_uri=f"gs://{bucket}/{PREFIXES['inference']}/{model.name}",
        reports_uri=f"gs://{bucket}/{PREFIXES['reports']}/{model.name}",
        sinks=[f"cloud-monitoring:{spec.gcp_settings.project}/{dashboards.namespace(spec)}"], retrain="none")



def workflow_source(model: str, jobs: dict[str, str]) -> str:
    """The Workflow (JSON source) running each step's job in order, handing files on through a directory of
    the mounted bucket unique to the execution. `jobs` maps each step to its job's full name."""
    directory = f'${{"{step_dir(model, "")}" + sys.get_env("GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID")}}'
    steps: list[dict[str, Any]] = [{"init": {"assign": [{"step_dir": directory}]}}]
    for step in STEPS:
        steps.append({step.replace("-", "_"): {"call": RUN_JOB, "args": {
            "name": jobs[step],
            "body": {"overrides": {"containerOverrides": [{
                "args": [step], "env": [{"name": "SHIPYARD_STEP_DIR", "value": "${step_dir}"}]}]}}}}})
    steps.append({"done": {"return": "${step_dir}"}})
    return json.dumps({"main": {"params": ["event"], "steps": steps}}, indent=2, sort_keys=True)


def scheduler_body(reason: str, model: str) -> str:
    """Cloud Scheduler's HTTP body (base64) starting a workflow execution: the adapter's request shape."""
    return base64.b64encode(json.dumps(execution_request(reason, model), sort_keys=True).encode()).decode()


def workflow_path(project: str, region: str, name: str) -> str:
    """A workflow's full resource name."""
    return f"projects/{project}/locations/{region}/workflows/{name}"


def workflow_condition(paths: list[str]) -> str:
    """A CEL condition limiting a project-level grant to these workflows."""
    return " || ".join(f'resource.name == "{p}"' for p in sorted(paths))


@dataclass
class ModelTraining:
    """One model's uploaded run configuration, its jobs and workflow."""

    config_uri: pulumi.Output[str]
    workflow: str
    jobs: dict[str, cloudrunv2.Job]


class GcpTrainingCluster(TrainingCluster):
    """The wheel, the run configurations, and per model the step jobs, the workflow and its schedule."""

    models: dict[str, ModelTraining]

    def __init__(self, name: str, spec: PlatformSpec, package: PipelinePackage, base: Foundation,
                 registry: GcpModelRegistry, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.spec, self.base, self.registry = spec, base, registry
        bucket = registry.bucket
        package_key = f"{PREFIXES['packages']}/{package.sha256}/{package.filename}"
        storage.BucketObject(f"{spec.prefix}-wheel", bucket=bucket.name, name=package_key,
                             source=pulumi.FileAsset(str(package.path)), content_type="application/zip",
                             metadata={"sha256": package.sha256, "version": package.version}, opts=self.child)
        self.package_uri = bucket.uri(package_key)
        self.package_dir = f"{MOUNT}/{PREFIXES['packages']}/{package.sha256}"
        self.cluster_name = pulumi.Output.from_input(gcp_name(spec.prefix, "training", kind="workflow"))
        bucket.grant(f"{spec.prefix}-training", base.member("training"), self.child,
                     read=[PREFIXES["packages"], PREFIXES["configs"], PREFIXES["data"]],
                     write=[PREFIXES["mlflow"], PREFIXES["training"]])
        self.models = {m.name: self._model(m) for m in spec.models}
        paths = [t.workflow for t in self.models.values()]
        projects.IAMMember(f"{spec.prefix}-scheduler-workflows", project=base.project, role=WORKFLOW_INVOKER,
                           member=base.member("scheduler"), opts=self.child,
                           condition=projects.IAMMemberConditionArgs(title="shipyard training workflows",
                                                                     expression=workflow_condition(paths)))
        self.done(workflows={n: t.workflow for n, t in self.models.items()},
                  run_configs={n: t.config_uri for n, t in self.models.items()})

    def workload(self, model: ModelSpec, account: str, config_uri: pulumi.Input[str], *, gpus: int = 0,
                 read_only: bool = False) -> Workload:
        """A job workload of `model` running as `account`."""
        base = self.base
        return Workload(image=base.image, account=base.accounts[account].email, network=base.network.network,
                        subnetwork=base.network.subnetwork, bucket=self.registry.bucket.name,
                        size="gpu" if gpus else self.spec.training.size, read_only=read_only, gpus=gpus,
                        env={"SHIPYARD_PACKAGE_DIR": self.package_dir, "SHIPYARD_RUN_CONFIG": config_uri,
                             "PYTHONUNBUFFERED": "1"}, secret_env={})

    def job(self, model: ModelSpec, role: str, workload: Workload, args: list[str], timeout_seconds: int
            ) -> cloudrunv2.Job:
        """One Cloud Run job of `model`."""
        spec, base = self.spec, self.base
        return cloudrunv2.Job(
            f"{spec.prefix}-{model.name}-{role}", name=gcp_name(spec.prefix, model.name, role, kind="run_job"),
            location=base.region, project=base.project, deletion_protection=spec.is_prod, labels=base.labels,
            template=job_template(workload, args=args, timeout_seconds=timeout_seconds, max_retries=1),
            opts=self.child)

    def _model(self, model: ModelSpec) -> ModelTraining:
        spec, base, bucket = self.spec, self.base, self.registry.bucket
        text = pulumi.Output.all(self.registry.tracking_uri, bucket.name).apply(
            lambda v: run_config_text(spec, model, tracking_uri=v[0], bucket=v[1]))
        key = text.apply(lambda t: content_key(f"{PREFIXES['configs']}/{model.name}", "run.json", t))
        storage.BucketObject(f"{spec.prefix}-config-{model.name}", bucket=bucket.name, name=key, content=text,
                             content_type="application/json", opts=self.child)
        config_uri = pulumi.Output.all(bucket.name, key).apply(lambda v: f"gs://{v[0]}/{v[1]}")
        timeout = spec.training.time_limit_minutes * 60
        gpus = spec.training.gpu_count if spec.training.size == "gpu" else 0
        jobs = {"steps": self.job(model, "steps", self.workload(model, "training", config_uri), ["validate-data"],
                                  timeout),
                "train": self.job(model, "train", self.workload(model, "training", config_uri, gpus=gpus), ["train"],
                                  timeout)}
        names = {step: f"projects/{base.project}/locations/{base.region}/jobs/"
                       f"{gcp_name(spec.prefix, model.name, 'train' if step == 'train' else 'steps', kind='run_job')}"
                 for step in STEPS}
        grants = [cloudrunv2.JobIamMember(f"{spec.prefix}-{model.name}-{role}-runner", name=job.name,
                                          location=base.region, project=base.project, role=JOB_RUNNER,
                                          member=base.member("pipeline"), opts=self.child)
                  for role, job in jobs.items()]
        workflow_name = gcp_name(spec.prefix, "training", model.name, kind="workflow")
        workflows.Workflow(
            f"{spec.prefix}-training-{model.name}", name=workflow_name, region=base.region, project=base.project,
            description=f"validate-data, train, evaluate, register: {model.registered_model}",
            service_account=base.accounts["pipeline"].id, source_contents=workflow_source(model.name, names),
            call_log_level="LOG_ERRORS_ONLY", deletion_protection=spec.is_prod, labels=base.labels,
            opts=after(self.child, *grants))
        path = workflow_path(base.project, base.region, workflow_name)
        cloudscheduler.Job(
            f"{spec.prefix}-training-{model.name}",
            name=gcp_name(spec.prefix, "training", model.name, kind="scheduler"),
            region=base.region, project=base.project, description=f"continuous training of {model.registered_model}",
            schedule=scheduler_cron(spec.training.schedule), time_zone="Etc/UTC", attempt_deadline="180s",
            retry_config=cloudscheduler.JobRetryConfigArgs(retry_count=2),
            http_target=cloudscheduler.JobHttpTargetArgs(
                uri=f"{WORKFLOWS_ENDPOINT}/v1/{path}/executions", http_method="POST",
                body=scheduler_body("schedule", model.registered_model),
                headers={"Content-Type": "application/json"},
                oauth_token=cloudscheduler.JobHttpTargetOauthTokenArgs(
                    service_account_email=base.accounts["scheduler"].email, scope=SCOPE)),
            opts=self.child)
        return ModelTraining(config_uri=config_uri, workflow=path, jobs=jobs)
