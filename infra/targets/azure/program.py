"""The Azure target's program: the platform on Azure's managed services, with no cluster to operate.

`build` declares, under one explicit azure-native provider for the spec's region: the shared foundation
(resource group, network, private DNS, Key Vault, registry, logs, the internal Container Apps environment),
the registry (MLflow on Container Apps, PostgreSQL Flexible Server, the storage account), training (scheduled
Container Apps jobs) and per model monitoring (drift job, Azure Monitor alerts, retraining) and serving (a
Container App). Every taggable resource carries the spec's tags (azure-native has no default tags). With
`azure.compute: kubernetes` the same provider carries the AKS cluster profile instead (`aks.build_cluster`). See
docs/azure.md.
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native

from infra.image import ImagePlan
from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets.azure.foundation import Foundation
from infra.targets.azure.monitoring import AzureMonitoring, metrics_url
from infra.targets.azure.registry import AzureModelRegistry
from infra.targets.azure.serving import AzureServingEndpoint
from infra.targets.azure.training import AzureTrainingCluster
from infra.targets.base import TargetResources
from infra.targets.cluster import on_cluster


def build(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage, image: ImagePlan,
          secrets: SecretValues) -> TargetResources:
    """Declare the whole platform on Azure and return its components."""
    provider = pulumi_azure_native.Provider(f"{spec.prefix}-azure", location=spec.region,
                                            opts=pulumi.ResourceOptions(parent=platform))
    if on_cluster(spec):
        # The cluster profile, and the Kubernetes SDK with it, loads only for a stack that asks for it.
        from infra.targets.azure.aks import build_cluster

        return build_cluster(platform, spec, package, image, secrets, provider)
    under = pulumi.ResourceOptions(parent=platform, providers={"azure-native": provider})
    base = Foundation(f"{spec.prefix}-foundation", spec, image, opts=under)
    registry = AzureModelRegistry(f"{spec.prefix}-registry", spec, base, secrets, opts=under)
    training = AzureTrainingCluster(f"{spec.prefix}-training", spec, package, base, registry, opts=under)
    monitors = {m.name: AzureMonitoring(f"{spec.prefix}-{m.name}-monitoring", spec, m, base, registry, training,
                                        secrets, opts=under) for m in spec.models}
    endpoints = {m.name: AzureServingEndpoint(f"{spec.prefix}-{m.name}", spec, m, base, registry, training,
                                              opts=under) for m in spec.models}
    return TargetResources(training=training, registry=registry, endpoints=endpoints, monitors=monitors,
                           dashboard_url=base.insights.id.apply(metrics_url))
