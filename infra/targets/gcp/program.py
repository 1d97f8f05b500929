"""The GCP target's program: the platform on Google Cloud's managed services, with no cluster to operate.

`build` declares, under one explicit Google provider for the spec's project and region (labelling every
resource with the spec's tags made legal): the shared foundation (APIs, network, KMS key, Artifact
Registry repository, workload service accounts, metric descriptors, overview dashboard), the registry
(MLflow on Cloud Run, Cloud SQL, the artifact bucket), training (Cloud Run jobs chained by a Workflow on a
Cloud Scheduler schedule), and per model monitoring (drift job, alert policies, alert-driven retraining)
and serving (a Cloud Run service). With `gcp.compute: kubernetes` the same provider carries the GKE cluster
profile instead (`gke.build_cluster`). See docs/gcp.md.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp

from infra.image import ImagePlan
from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets.base import TargetResources
from infra.targets.cluster import on_cluster
from infra.targets.gcp.foundation import Foundation
from infra.targets.gcp.monitoring import GcpMonitoring
from infra.targets.gcp.names import labels
from infra.targets.gcp.registry import GcpModelRegistry
from infra.targets.gcp.serving import GcpServingEndpoint
from infra.targets.gcp.training import GcpTrainingCluster

#: Workloads of the whole platform, each with its own service account.
PLATFORM_WORKLOADS = ("mlflow", "training", "pipeline", "scheduler")


def workloads(spec: PlatformSpec) -> list[str]:
    """Every workload that gets a service account: the platform's, and per model serving, monitor, trigger."""
    per_model = [f"{role}-{m.name}" for m in spec.models for role in ("serving", "monitor")]
    triggers = [f"trigger-{m.name}" for m in spec.models if m.monitoring.retrain_on_drift]
    return [*PLATFORM_WORKLOADS, *per_model, *triggers]


def build(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage, image: ImagePlan,
          secrets: SecretValues) -> TargetResources:
    """Declare the whole platform on GCP and return its components."""
    provider = pulumi_gcp.Provider(
        f"{spec.prefix}-gcp", project=spec.gcp_settings.project, region=spec.region,
        default_labels=labels(spec.all_tags),
        opts=pulumi.ResourceOptions(parent=platform))
    if on_cluster(spec):
        # The cluster profile, and the Kubernetes SDK with it, loads only for a stack that asks for it.
        from infra.targets.gcp.gke import build_cluster

        return build_cluster(platform, spec, package, image, secrets, provider)
    under = pulumi.ResourceOptions(parent=platform, providers={"gcp": provider})
    base = Foundation(f"{spec.prefix}-foundation", spec, image, workloads(spec), opts=under)
    registry = GcpModelRegistry(f"{spec.prefix}-registry", spec, base, secrets, opts=under)
    training = GcpTrainingCluster(f"{spec.prefix}-training", spec, package, base, registry, opts=under)
    monitors = {m.name: GcpMonitoring(f"{spec.prefix}-{m.name}-monitoring", spec, m, base, registry, training,
                                      secrets, opts=under) for m in spec.models}
    endpoints = {m.name: GcpServingEndpoint(f"{spec.prefix}-{m.name}", spec, m, base, registry, training,
                                            opts=under) for m in spec.models}
    return TargetResources(training=training, registry=registry, endpoints=endpoints, monitors=monitors,
                           dashboard_url=base.dashboard_url,
                           extra_outputs={"image_repository": base.repository_url})
