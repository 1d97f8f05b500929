"""Serving on GCP: per model a Cloud Run service running `python -m pipelines serve` (the image's `serve`
entrypoint installs the wheel from the mounted bucket), scaling between the spec's replica bounds.

The server loads the registry alias (and follows it when it moves) and writes the Parquet inference logs
the monitor reads to `gs://<bucket>/inference/<model>`. Ingress is internal unless the model is public;
`auth: none` turns invoker IAM off, `iam` (and `api_key`, which Cloud Run does not have) requires a Google
ID token of a caller holding roles/run.invoker. A new revision takes the traffic once its startup probe
passes; a revision that never starts never takes any.
"""

from __future__ import annotations

from dataclasses import replace

import pulumi
from pulumi_gcp import cloudrunv2

from infra.components import ServingEndpoint
from infra.spec import ModelSpec, PlatformSpec
from infra.targets.gcp.dashboards import service_name
from infra.targets.gcp.foundation import Foundation
from infra.targets.gcp.registry import GcpModelRegistry
from infra.targets.gcp.services import run_url
from infra.targets.gcp.training import GcpTrainingCluster
from infra.targets.gcp.workload import service_template
from infra.targets.objectstore import PREFIXES


def ingress(model: ModelSpec) -> str:
    """Cloud Run ingress: everyone only for a public model, else the VPC and Google's internal callers."""
    return "INGRESS_TRAFFIC_ALL" if model.serving.public else "INGRESS_TRAFFIC_INTERNAL_ONLY"


def invocation_url(base_url: str) -> str:
    """The scoring URL of a service (MLflow's protocol)."""
    return f"{base_url}/invocations"


class GcpServingEndpoint(ServingEndpoint):
    """One model's Cloud Run service."""

    def __init__(self, name: str, spec: PlatformSpec, model: ModelSpec, base: Foundation,
                 registry: GcpModelRegistry, training: GcpTrainingCluster,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        account = f"serving-{model.name}"
        registry.bucket.grant(f"{spec.prefix}-{model.name}-serving", base.member(account), self.child,
                              read=[PREFIXES["packages"], f"{PREFIXES['configs']}/{model.name}", PREFIXES["mlflow"]],
                              write=[f"{PREFIXES['inference']}/{model.name}"])
        workload = replace(training.workload(model, account, training.models[model.name].config_uri, read_only=True),
                           size=model.serving.size, gpus=1 if model.serving.size == "gpu" else 0)
        service = service_name(spec, model)
        cloudrunv2.Service(
            f"{spec.prefix}-{model.name}", name=service, location=base.region, project=base.project,
            ingress=ingress(model), invoker_iam_disabled=model.serving.auth == "none",
            deletion_protection=spec.is_prod, labels=base.labels,
            description=f"serves {model.registered_model}@{model.serving.alias}",
            template=service_template(workload, args=["serve"], min_instances=model.serving.min_replicas,
                                      max_instances=model.serving.max_replicas, probe_path="/ping"),
            traffics=[cloudrunv2.ServiceTrafficArgs(type="TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", percent=100)],
            opts=self.child)
        self.url = base.number.apply(lambda n: invocation_url(run_url(service, n, base.region)))
        self.done(service=service)
