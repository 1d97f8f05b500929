"""Training on AWS: the pipelines wheel in S3, one SageMaker pipeline per model, an EventBridge schedule each.

The wheel goes to `packages/<sha256>/<wheel>` (content-addressed: an unchanged tree uploads nothing and
changes no definition); each model's run configuration goes to `configs/<model>/<hash>/run.json`. Every
pipeline runs under its own execution role that may only start its jobs and pass their role; the jobs'
role reads the package, the configurations and the data, and writes MLflow artifacts and job outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_aws import iam as aws_iam
from pulumi_aws import sagemaker, scheduler

from infra.components import TrainingCluster
from infra.packaging import PipelinePackage
from infra.runconfig import content_key, pipeline_config_text
from infra.spec import ModelSpec, PlatformSpec
from infra.targets.aws import iam, jobs
from infra.targets.aws.foundation import Foundation
from infra.targets.aws.names import aws_name
from infra.targets.aws.registry import AwsModelRegistry, client_statements
from infra.targets.aws.sizes import size, training_instance
from infra.targets.aws.storage import upload
from infra.targets.objectstore import PREFIXES


def metrics_namespace(spec: PlatformSpec) -> str:
    """The CloudWatch namespace of the platform's drift and quality metrics."""
    return f"Shipyard/{spec.prefix}"


def run_config_text(spec: PlatformSpec, model: ModelSpec, *, tracking_uri: str, bucket: str) -> str:
    """The run configuration of `model` on AWS, as stable JSON.

    Metrics go to CloudWatch; `retrain` is `none` because on AWS retraining is alarm-driven: the monitor's
    verdict becomes a metric, its alarm notifies and (when the spec allows) starts the training pipeline
    through EventBridge, once per drift episode rather than once per monitor run.
    """
    return pipeline_config_text(
        spec, model, tracking_uri=tracking_uri,
        inference_log_uri=f"s3://{bucket}/{PREFIXES['inference']}/{model.name}",
        reports_uri=f"s3://{bucket}/{PREFIXES['reports']}/{model.name}",
        sinks=[f"cloudwatch:{metrics_namespace(spec)}"], retrain="none")



def dataset_statements(dataset_uri: str) -> list[iam.Statement]:
    """Read access to a dataset in S3 outside the platform bucket (nothing for demo:// or other schemes)."""
    if not dataset_uri.startswith("s3://"):
        return []
    bucket, _, key = dataset_uri.removeprefix("s3://").partition("/")
    arn = f"arn:aws:s3:::{bucket}"
    return [iam.statement(["s3:ListBucket"], [arn], {"StringLike": {"s3:prefix": [f"{key}*"]}}),
            iam.statement(["s3:GetObject"], [f"{arn}/{key}*"])]


@dataclass
class RunConfigObject:
    """One model's uploaded run configuration."""

    uri: pulumi.Output[str]
    prefix: pulumi.Output[str]


def job_context(base: Foundation, role_arn: pulumi.Input[str], package_prefix: pulumi.Input[str],
                config_prefix: pulumi.Input[str], output_uri: pulumi.Input[str], *, max_runtime_seconds: int,
                spot: bool) -> pulumi.Output[jobs.JobContext]:
    """The resolved `JobContext` of one model's jobs."""
    return pulumi.Output.all(base.image, role_arn, base.network.subnet_ids, base.network.workloads_sg.id,
                             base.key.arn, package_prefix, config_prefix, output_uri).apply(
        lambda v: jobs.JobContext(image=v[0], role_arn=v[1], subnets=tuple(v[2]), security_groups=(v[3],),
                                  kms_key_arn=v[4], package_prefix=v[5], config_prefix=v[6], output_uri=v[7],
                                  max_runtime_seconds=max_runtime_seconds, region=base.region, spot=spot))


def service_role(name: str, service: str, account: pulumi.Input[str], tags: dict[str, str],
                 opts: pulumi.ResourceOptions) -> aws_iam.Role:
    """A role only `service` may assume, on behalf of this account only (auto-named within IAM's limit)."""
    trust = iam.policy_json(lambda acct: iam.assume_role(service, acct), account)
    return aws_iam.Role(aws_name(name, kind="iam_role", autonamed=True), assume_role_policy=trust, tags=tags, opts=opts)


def start_pipeline_role(name: str, service: str, base: Foundation, pipeline_arns: list[pulumi.Output[str]],
                        tags: dict[str, str], opts: pulumi.ResourceOptions) -> aws_iam.Role:
    """A role that EventBridge (or its Scheduler) assumes to start exactly these pipelines."""
    role = service_role(name, service, base.account, tags, opts)
    aws_iam.RolePolicy(name, role=role.id, opts=opts, policy=pulumi.Output.all(*pipeline_arns).apply(
        lambda arns: iam.to_json(iam.document([iam.start_pipelines(arns)]))))
    return role


class AwsTrainingCluster(TrainingCluster):
    """The wheel, the run configurations, and per model a scheduled SageMaker training pipeline."""

    run_configs: dict[str, RunConfigObject]
    pipelines: dict[str, sagemaker.Pipeline]

    def __init__(self, name: str, spec: PlatformSpec, package: PipelinePackage, base: Foundation,
                 registry: AwsModelRegistry, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.spec, self.base, self.registry = spec, base, registry
        bucket = registry.bucket
        package_key = f"{PREFIXES['packages']}/{package.sha256}/{package.filename}"
        upload(f"{spec.prefix}-wheel", bucket, package_key, self.child, base.key,
               source=pulumi.FileAsset(str(package.path)),
               metadata={"sha256": package.sha256, "version": package.version}, content_type="application/zip")
        self.package_uri = bucket.uri(package_key)
        self.package_prefix = bucket.uri(PREFIXES["packages"], package.sha256).apply(lambda uri: f"{uri}/")
        self.cluster_name = pulumi.Output.from_input(aws_name(spec.prefix, "training"))

        self.jobs_role = self._jobs_role()
        self.run_configs = {m.name: self._run_config(m) for m in spec.models}
        definitions = {m.name: self._definition(m) for m in spec.models}
        pipeline_role = service_role(f"{spec.prefix}-training-pipeline", "sagemaker.amazonaws.com", base.account,
                                     spec.all_tags, self.child)
        aws_iam.RolePolicy(f"{spec.prefix}-training-pipeline", role=pipeline_role.id, opts=self.child,
                           policy=iam.policy_json(lambda acct, job_role, key: iam.document(
                               iam.run_pipeline_jobs(base.region, acct, [job_role], key)),
                               base.account, self.jobs_role.arn, base.key.arn))
        self.pipelines = {
            m.name: sagemaker.Pipeline(
                f"{spec.prefix}-training-{m.name}", pipeline_name=aws_name(spec.prefix, "training", m.name),
                pipeline_display_name=aws_name(spec.prefix, "training", m.name),
                pipeline_description=f"validate-data, train, evaluate, register: {m.registered_model}",
                pipeline_definition=definitions[m.name], role_arn=pipeline_role.arn,
                parallelism_configuration=sagemaker.PipelineParallelismConfigurationArgs(
                    max_parallel_execution_steps=spec.training.max_nodes),
                tags=spec.all_tags, opts=self.child)
            for m in spec.models
        }
        schedules = start_pipeline_role(f"{spec.prefix}-training-schedule", "scheduler.amazonaws.com", base,
                                        [p.arn for p in self.pipelines.values()], spec.all_tags, self.child)
        for model in spec.models:
            scheduler.Schedule(
                f"{spec.prefix}-training-{model.name}", name=aws_name(spec.prefix, "training", model.name,
                                                                      kind="schedule"),
                description=f"continuous training of {model.registered_model}",
                schedule_expression=jobs.aws_cron(spec.training.schedule), schedule_expression_timezone="UTC",
                flexible_time_window=scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
                target=scheduler.ScheduleTargetArgs(
                    arn=self.pipelines[model.name].arn, role_arn=schedules.arn,
                    retry_policy=scheduler.ScheduleTargetRetryPolicyArgs(maximum_retry_attempts=2),
                    sagemaker_pipeline_parameters=scheduler.ScheduleTargetSagemakerPipelineParametersArgs(
                        pipeline_parameters=[scheduler.ScheduleTargetSagemakerPipelineParametersPipelineParameterArgs(
                            name=jobs.REASON, value="schedule")])),
                opts=self.child)
        self.done(pipelines={name: p.pipeline_name for name, p in self.pipelines.items()},
                  run_configs={name: c.uri for name, c in self.run_configs.items()})

    def _jobs_role(self) -> aws_iam.Role:
        spec, base, registry = self.spec, self.base, self.registry
        role = service_role(f"{spec.prefix}-training-jobs", "sagemaker.amazonaws.com", base.account, spec.all_tags,
                            self.child)
        datasets = [s for m in spec.models for s in dataset_statements(m.pipeline.dataset_uri)]

        def build(bucket: str, key: str, repo: str, acct: str, server: str) -> iam.Document:
            return iam.document([
                *iam.s3_access(bucket, read=[PREFIXES["packages"], PREFIXES["configs"], PREFIXES["data"],
                                             PREFIXES["training"]], write=[PREFIXES["training"]]),
                *client_statements(server, bucket), *datasets,
                iam.kms_use(key), *iam.ecr_pull(repo), iam.sagemaker_logs(base.region, acct), iam.vpc_access(),
            ])

        aws_iam.RolePolicy(f"{spec.prefix}-training-jobs", role=role.id, opts=self.child, policy=iam.policy_json(
            build, registry.bucket.arn, base.key.arn, base.repository_arn, base.account, registry.server_arn))
        return role

    def _run_config(self, model: ModelSpec) -> RunConfigObject:
        bucket = self.registry.bucket
        text = pulumi.Output.all(self.registry.tracking_uri, bucket.name).apply(
            lambda v: run_config_text(self.spec, model, tracking_uri=v[0], bucket=v[1]))
        key = text.apply(lambda t: content_key(f"{PREFIXES['configs']}/{model.name}", "run.json", t))
        upload(f"{self.spec.prefix}-config-{model.name}", bucket, key, self.child, self.base.key, content=text,
               content_type="application/json")
        uri = pulumi.Output.all(bucket.name, key).apply(lambda v: f"s3://{v[0]}/{v[1]}")
        return RunConfigObject(uri=uri, prefix=uri.apply(lambda u: u.rsplit("/", 1)[0] + "/"))

    def _definition(self, model: ModelSpec) -> pulumi.Output[str]:
        spec = self.spec
        ctx = job_context(self.base, self.jobs_role.arn, self.package_prefix, self.run_configs[model.name].prefix,
                          self.registry.bucket.uri(PREFIXES["training"], model.name).apply(lambda u: f"{u}/"),
                          max_runtime_seconds=spec.training.time_limit_minutes * 60, spot=spec.training.spot)

        def render(context: jobs.JobContext) -> str:
            definition: dict[str, Any] = jobs.training_pipeline(
                context, training_instance=training_instance(spec.training.size, spec.training.gpu_count),
                processing_instance=size(spec.training.size).processing)
            return iam.to_json(definition)

        return ctx.apply(render)
