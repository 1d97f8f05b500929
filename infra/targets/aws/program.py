"""The AWS target's program: the platform on managed AWS services, with no cluster to operate.

`build` declares, under one explicit AWS provider for the spec's region (tagging every resource with the
spec's tags): the shared foundation (VPC, KMS key, image repository and the runtime image pushed into it,
overview dashboard), the registry
(MLflow, RDS or SageMaker's managed server, the artifact bucket), training (SageMaker pipelines on a
schedule), and per model monitoring (drift job, alarms, alerts, retraining) and serving (a SageMaker
endpoint). With `aws.compute: kubernetes` the same provider carries the EKS cluster profile instead
(`eks.build_cluster`). See docs/aws.md.
"""

from __future__ import annotations

import pulumi
import pulumi_aws

from infra.image import ImagePlan
from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets.aws.foundation import Foundation
from infra.targets.aws.monitoring import AwsMonitoring, dashboard_body, dashboard_url
from infra.targets.aws.names import aws_name
from infra.targets.aws.registry import AwsModelRegistry
from infra.targets.aws.serving import AwsServingEndpoint
from infra.targets.aws.training import AwsTrainingCluster
from infra.targets.base import TargetResources
from infra.targets.cluster import on_cluster


def build(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage, image: ImagePlan,
          secrets: SecretValues) -> TargetResources:
    """Declare the whole platform on AWS and return its components."""
    provider = pulumi_aws.Provider(
        f"{spec.prefix}-aws", region=spec.region,
        default_tags=pulumi_aws.ProviderDefaultTagsArgs(tags=spec.all_tags),
        opts=pulumi.ResourceOptions(parent=platform))
    if on_cluster(spec):
        # The cluster profile, and the Kubernetes SDK with it, loads only for a stack that asks for it.
        from infra.targets.aws.eks import build_cluster

        return build_cluster(platform, spec, package, image, secrets, provider)
    under = pulumi.ResourceOptions(parent=platform, providers={"aws": provider})

    overview = aws_name(spec.prefix, "overview", kind="dashboard")
    base = Foundation(f"{spec.prefix}-foundation", spec, image, overview=(overview, dashboard_body(spec, spec.models)),
                      opts=under)
    registry = AwsModelRegistry(f"{spec.prefix}-registry", spec, base, secrets, opts=under)
    training = AwsTrainingCluster(f"{spec.prefix}-training", spec, package, base, registry, opts=under)
    monitors = {m.name: AwsMonitoring(f"{spec.prefix}-{m.name}-monitoring", spec, m, base, registry, training,
                                      secrets, opts=under) for m in spec.models}
    endpoints = {m.name: AwsServingEndpoint(f"{spec.prefix}-{m.name}", spec, m, base, registry, training,
                                            monitors[m.name].alerts, opts=under) for m in spec.models}
    return TargetResources(training=training, registry=registry, endpoints=endpoints, monitors=monitors,
                           dashboard_url=pulumi.Output.from_input(dashboard_url(base.region, overview)))
