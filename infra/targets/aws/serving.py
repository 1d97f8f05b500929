"""Serving on AWS: per model a SageMaker real-time endpoint running `python -m pipelines serve`.

The model's container is the runtime image; SageMaker copies the content-addressed wheel's prefix into
`/opt/ml/model` and the image's entrypoint installs it and serves (the contract is in docs/aws.md). The
server loads the registry alias (and follows it when it moves) and writes the Parquet inference logs the
monitor reads to S3 (no SageMaker data capture: nothing would read a second copy). A changed wheel,
configuration or instance type makes a new endpoint configuration, rolled out blue/green (canary, linear
or all at once, per the spec) with automatic rollback on the error and latency alarms. Application Auto
Scaling keeps the instance count within the spec's replica bounds, tracking CPU.

SageMaker endpoints are reached only through the SageMaker runtime API with SigV4 (IAM) from inside the
VPC (interface endpoint) or wherever the caller's credentials allow: `serving.public` is refused here.
"""

from __future__ import annotations

import pulumi
from pulumi_aws import appautoscaling, cloudwatch, sagemaker, sns
from pulumi_aws import iam as aws_iam

from infra.components import ServingEndpoint
from infra.spec import ModelSpec, PlatformSpec, RolloutSpec
from infra.targets.aws import iam
from infra.targets.aws.foundation import Foundation
from infra.targets.aws.jobs import region_variables
from infra.targets.aws.names import aws_name
from infra.targets.aws.registry import AwsModelRegistry, client_statements
from infra.targets.aws.rollout import MAX_WAIT_SECONDS, fleet_size, traffic_shift
from infra.targets.aws.sizes import size, takes_volume_kms_key
from infra.targets.aws.training import AwsTrainingCluster, service_role
from infra.targets.objectstore import PREFIXES

VARIANT = "primary"
#: Where SageMaker puts the model data (here: the wheel's prefix), and so where the entrypoint finds the wheel.
MODEL_DIR = "/opt/ml/model"
#: The p99 model latency alarm allows this multiple of the gate's single-row limit (requests carry batches).
LATENCY_ALARM_FACTOR = 10
#: Where SageMaker publishes an endpoint's instance metrics (CPUUtilization, which autoscaling tracks) with the
#: endpoint's execution role.
INSTANCE_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"


def endpoint_name(spec: PlatformSpec, model: ModelSpec) -> str:
    """The SageMaker endpoint's name (stable: it is part of the invocation URL)."""
    return aws_name(spec.prefix, model.name)


def invocation_url(region: str, name: str) -> str:
    """The SageMaker runtime URL that invokes an endpoint (MLflow scoring payloads, SigV4-signed)."""
    return f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{name}/invocations"


def deployment_config(rollout: RolloutSpec, fleet: int,
                      alarm_names: list[pulumi.Input[str]]) -> sagemaker.EndpointDeploymentConfigArgs:
    """Blue/green per `rollout.traffic_shift` on a new fleet of `fleet` instances, rolled back automatically when
    any of the alarms fires (`rules.check` refuses the shifts SageMaker would)."""
    shift = traffic_shift(rollout, fleet)
    size_args = sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs
    linear_args = sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs
    step = None if shift.step_instances is None else {"type": "INSTANCE_COUNT", "value": shift.step_instances}
    return sagemaker.EndpointDeploymentConfigArgs(
        blue_green_update_policy=sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
            traffic_routing_configuration=(
                sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
                    type=shift.type, wait_interval_in_seconds=shift.wait_seconds,
                    canary_size=size_args(**step) if step and shift.type == "CANARY" else None,
                    linear_step_size=linear_args(**step) if step and shift.type == "LINEAR" else None)),
            maximum_execution_timeout_in_seconds=shift.timeout_seconds,
            termination_wait_in_seconds=min(rollout.bake_minutes * 60, MAX_WAIT_SECONDS)),
        auto_rollback_configuration=sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
            alarms=[sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(alarm_name=name)
                    for name in alarm_names]))


def replica_bounds(model: ModelSpec) -> tuple[int, int]:
    """(min, max) instances: a real-time SageMaker endpoint keeps at least one instance."""
    return fleet_size(model.serving), max(1, model.serving.max_replicas)


def cpu_target(model: ModelSpec) -> float:
    """The CPUUtilization target: SageMaker sums it over the instance's vCPUs (100% per core)."""
    return float(model.serving.target_cpu_utilization * size(model.serving.size).serving_vcpus)


class AwsServingEndpoint(ServingEndpoint):
    """One model's SageMaker endpoint, its rollout, autoscaling and rollback alarms."""

    def __init__(self, name: str, spec: PlatformSpec, model: ModelSpec, base: Foundation,
                 registry: AwsModelRegistry, training: AwsTrainingCluster, alerts: sns.Topic,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        prefix, tags = spec.prefix, spec.all_tags
        self.endpoint_name = endpoint_name(spec, model)
        instance = size(model.serving.size).serving
        role, permissions = self._role(spec, model, base, registry)
        container_env = training.run_configs[model.name].uri.apply(
            lambda uri: {"SHIPYARD_PACKAGE_DIR": MODEL_DIR, "SHIPYARD_RUN_CONFIG": uri, "PYTHONUNBUFFERED": "1",
                         **region_variables(base.region)})
        autonamed = aws_name(prefix, model.name, kind="sagemaker", autonamed=True)
        served = sagemaker.Model(
            autonamed, execution_role_arn=role.arn, tags=tags,
            opts=pulumi.ResourceOptions.merge(self.child, pulumi.ResourceOptions(depends_on=[permissions])),
            primary_container=sagemaker.ModelPrimaryContainerArgs(
                image=base.image, mode="SingleModel", environment=container_env,
                model_data_source=sagemaker.ModelPrimaryContainerModelDataSourceArgs(s3_data_sources=[
                    sagemaker.ModelPrimaryContainerModelDataSourceS3DataSourceArgs(
                        s3_uri=training.package_prefix, s3_data_type="S3Prefix", compression_type="None")])),
            vpc_config=sagemaker.ModelVpcConfigArgs(subnets=base.network.subnet_ids,
                                                    security_group_ids=[base.network.workloads_sg.id]))
        low, high = replica_bounds(model)
        config = sagemaker.EndpointConfiguration(
            autonamed, tags=tags, opts=self.child,
            kms_key_arn=base.key.arn if takes_volume_kms_key(instance) else None,
            production_variants=[sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name=VARIANT, model_name=served.name, instance_type=instance, initial_instance_count=low,
                container_startup_health_check_timeout_in_seconds=600)])
        cloudwatch.LogGroup(f"{prefix}-{model.name}-endpoint", name=f"/aws/sagemaker/Endpoints/{self.endpoint_name}",
                            retention_in_days=90 if spec.is_prod else 14, kms_key_id=base.key.arn, tags=tags,
                            opts=self.child)
        alarms = self._rollback_alarms(spec, model, alerts)
        endpoint = sagemaker.Endpoint(
            f"{prefix}-{model.name}", name=self.endpoint_name, endpoint_config_name=config.name, tags=tags,
            deployment_config=deployment_config(model.serving.rollout, low, [a.name for a in alarms]), opts=self.child)
        target = appautoscaling.Target(
            f"{prefix}-{model.name}", service_namespace="sagemaker", min_capacity=low, max_capacity=high,
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            resource_id=endpoint.name.apply(lambda n: f"endpoint/{n}/variant/{VARIANT}"), tags=tags, opts=self.child)
        tracking = appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs
        metric = appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs
        dimension = (
            appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationDimensionArgs)
        appautoscaling.Policy(
            f"{prefix}-{model.name}-cpu", policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id, scalable_dimension=target.scalable_dimension, opts=self.child,
            target_tracking_scaling_policy_configuration=tracking(
                target_value=cpu_target(model), scale_in_cooldown=300, scale_out_cooldown=60,
                customized_metric_specification=metric(
                    metric_name="CPUUtilization", namespace="/aws/sagemaker/Endpoints", statistic="Average",
                    dimensions=[dimension(name="EndpointName", value=self.endpoint_name),
                                dimension(name="VariantName", value=VARIANT)])))
        self.url = pulumi.Output.from_input(invocation_url(base.region, self.endpoint_name))
        self.done(endpoint_name=endpoint.name, endpoint_config=config.name, model=served.name)

    def _role(self, spec: PlatformSpec, model: ModelSpec, base: Foundation, registry: AwsModelRegistry
              ) -> tuple[aws_iam.Role, aws_iam.RolePolicy]:
        """The endpoint's execution role: pull the image, read the wheel, its configuration and the registry's
        artifacts, write its inference logs, publish the instance metrics autoscaling tracks."""
        name = f"{spec.prefix}-{model.name}-serving"
        role = service_role(name, "sagemaker.amazonaws.com", base.account, spec.all_tags, self.child)

        def build(bucket: str, key: str, repo: str, acct: str, server: str) -> iam.Document:
            return iam.document([
                *iam.s3_access(bucket, read=[PREFIXES["packages"], f"{PREFIXES['configs']}/{model.name}"],
                               write=[f"{PREFIXES['inference']}/{model.name}"]),
                *client_statements(server, bucket, write=False),
                iam.kms_use(key), *iam.ecr_pull(repo), iam.sagemaker_logs(base.region, acct), iam.vpc_access(),
                iam.put_metrics(INSTANCE_METRICS_NAMESPACE),
            ])

        policy = aws_iam.RolePolicy(name, role=role.id, opts=self.child, policy=iam.policy_json(
            build, registry.bucket.arn, base.key.arn, base.repository_arn, base.account, registry.server_arn))
        return role, policy

    def _rollback_alarms(self, spec: PlatformSpec, model: ModelSpec, alerts: sns.Topic) -> list[cloudwatch.MetricAlarm]:
        """Server errors and p99 model latency of the endpoint: they page, and they roll a deployment back."""
        dims = {"EndpointName": self.endpoint_name, "VariantName": VARIANT}
        common = {"namespace": "AWS/SageMaker", "dimensions": dims, "period": 60, "evaluation_periods": 3,
                  "datapoints_to_alarm": 2, "comparison_operator": "GreaterThanThreshold",
                  "treat_missing_data": "notBreaching", "alarm_actions": [alerts.arn], "ok_actions": [alerts.arn],
                  "tags": spec.all_tags, "opts": self.child}
        return [
            cloudwatch.MetricAlarm(
                f"{spec.prefix}-{model.name}-5xx", name=aws_name(self.endpoint_name, "5xx", kind="alarm"),
                alarm_description=f"{model.name}: the endpoint answers with server errors",
                metric_name="Invocation5XXErrors", statistic="Sum", threshold=0, **common),
            cloudwatch.MetricAlarm(
                f"{spec.prefix}-{model.name}-latency", name=aws_name(self.endpoint_name, "latency", kind="alarm"),
                alarm_description=f"{model.name}: p99 model latency above {LATENCY_ALARM_FACTOR}x the gate's limit",
                metric_name="ModelLatency", extended_statistic="p99",
                threshold=model.pipeline.gates.max_latency_ms * 1000 * LATENCY_ALARM_FACTOR, **common),
        ]
