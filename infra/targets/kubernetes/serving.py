"""A model's endpoint on Kubernetes: Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget,
its NetworkPolicy, an API key when asked, and an Ingress only when the spec makes it public.

The pods run the same wheel as training (`python -m pipelines serve`), write their inference log to the
shared data volume, and expose Prometheus metrics on `/metrics`. Rollouts surge one pod and never take one
away before its replacement is ready, so capacity stays full; replicas spread over nodes and zones (on a
ReadWriteMany data volume; on ReadWriteOnce they share the volume's node). A voluntary disruption (a drain)
takes one pod at a time. The API key is a Secret file (`$SHIPYARD_API_KEY_FILE`), never an env value.
"""

from __future__ import annotations

import pulumi
import pulumi_random
from pulumi_kubernetes.apps.v1 import (
    Deployment,
    DeploymentSpecArgs,
    DeploymentStrategyArgs,
    RollingUpdateDeploymentArgs,
)
from pulumi_kubernetes.autoscaling.v2 import (
    CrossVersionObjectReferenceArgs,
    HorizontalPodAutoscaler,
    HorizontalPodAutoscalerSpecArgs,
    MetricSpecArgs,
    MetricTargetArgs,
    ResourceMetricSourceArgs,
)
from pulumi_kubernetes.core.v1 import ContainerPortArgs, PodTemplateSpecArgs
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs
from pulumi_kubernetes.networking.v1 import (
    HTTPIngressPathArgs,
    HTTPIngressRuleValueArgs,
    Ingress,
    IngressBackendArgs,
    IngressRuleArgs,
    IngressServiceBackendArgs,
    IngressSpecArgs,
    IngressTLSArgs,
    ServiceBackendPortArgs,
)
from pulumi_kubernetes.policy.v1 import PodDisruptionBudget, PodDisruptionBudgetSpecArgs

from infra.components import ServingEndpoint
from infra.spec import ModelSpec, PlatformSpec
from infra.targets.kubernetes import layout, network
from infra.targets.kubernetes.context import Context, network_policy, secret, service, service_account
from infra.targets.kubernetes.registry import KubernetesRegistry
from infra.targets.kubernetes.sizes import cpu_only, resources
from infra.targets.kubernetes.training import KubernetesTraining
from infra.targets.kubernetes.workload import (
    SecretFiles,
    data_pod_affinity,
    env,
    http_probe,
    pipelines_pod,
    spread,
)

#: Pods a voluntary disruption (a node drain, a node-pool upgrade) may take at once.
PDB_MAX_UNAVAILABLE = 1


def scrape_annotations(port: int, path: str) -> dict[str, str]:
    """The `prometheus.io/*` annotations annotation-driven Prometheus configurations scrape by."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": path}


def replica_bounds(model: ModelSpec) -> tuple[int, int]:
    """(min, max) replicas of the autoscaler. Kubernetes' HPA cannot scale to zero: a minimum of 0 becomes 1."""
    return max(1, model.serving.min_replicas), model.serving.max_replicas


def ingress_rule(model: str, allowed_cidrs: list[str]) -> tuple[str, str, dict[str, str]]:
    """(path, pathType, annotations) publishing a model's scoring paths (`layout.SCORING_PATHS`) as
    `/<model>/invocations` and `/<model>/ping` on ingress-nginx, with the prefix stripped (the server answers
    `/invocations`), HTTPS only, and, when `allowed_cidrs` is set, only those clients admitted. Nothing else of the
    server (`/health`, `/metrics`, `/-/reload`, `/-/flush`) is routed. Another controller needs its own rewrite
    and source filter (e.g. Traefik middlewares) here and in `rules.PUBLIC_INGRESS_CLASSES`; `rules.check`
    refuses it until then.
    """
    annotations = {"nginx.ingress.kubernetes.io/use-regex": "true",
                   "nginx.ingress.kubernetes.io/rewrite-target": "/$1",
                   "nginx.ingress.kubernetes.io/force-ssl-redirect": "true"}
    if allowed_cidrs:
        annotations["nginx.ingress.kubernetes.io/whitelist-source-range"] = ",".join(allowed_cidrs)
    return f"/{model}/({'|'.join(layout.SCORING_PATHS)})$", "ImplementationSpecific", annotations


class KubernetesServing(ServingEndpoint):
    """One model's endpoint."""

    def __init__(self, name: str, ctx: Context, model: ModelSpec, registry: KubernetesRegistry,
                 training: KubernetesTraining, opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        spec: PlatformSpec = ctx.spec
        serving = model.serving
        key = model.name
        app = layout.serving_name(key)
        workload = ctx.workload(layout.APP_SERVING, "serving", key, runs_pipelines=True)
        account = service_account(ctx, f"{key}-serving", app, workload, self.child)

        extra_env, secret_files = [], []
        if serving.auth == "api_key":
            api_key = pulumi_random.RandomPassword(f"{key}-api-key", length=40, special=False, opts=self.child)
            stored = secret(ctx, f"{key}-api-key", layout.api_key_secret(key), workload,
                            {"api-key": pulumi.Output.secret(api_key.result)}, self.child)
            files = SecretFiles("api-key", stored.metadata.apply(lambda m: m.name), ("api-key",))
            secret_files.append(files)
            extra_env.append(env("SHIPYARD_API_KEY_FILE", files.path("api-key")))

        pod = pipelines_pod(
            training.runtimes[key], "serve",
            service_account=account.metadata.apply(lambda m: m.name),
            container_resources=resources(cpu_only(serving.size)),
            args=["--host", "0.0.0.0", "--port", str(layout.SERVING_PORT)],
            extra_env=extra_env,
            secret_files=secret_files,
            ports=[ContainerPortArgs(name="http", container_port=layout.SERVING_PORT)],
            probes={"startup": http_probe("/health", "http", period=5, failures=60),
                    "readiness": http_probe("/ping", "http", period=5),
                    "liveness": http_probe("/health", "http", period=20, failures=3)},
            data_volume=ctx.data_claim,
            pod_affinity=data_pod_affinity(spec),
            # On a ReadWriteOnce data volume every replica shares its node: nothing to spread.
            topology_spread=spread(workload.selector) if data_pod_affinity(spec) is None else (),
        )
        low, high = replica_bounds(model)
        # No `replicas`: the autoscaler owns the count, and an update never resets it.
        deployment = Deployment(f"{key}-serving", metadata=ctx.meta(app, workload), spec=DeploymentSpecArgs(
            selector=LabelSelectorArgs(match_labels=workload.selector),
            min_ready_seconds=5,
            strategy=DeploymentStrategyArgs(type="RollingUpdate", rolling_update=RollingUpdateDeploymentArgs(
                max_unavailable=0, max_surge=1)),
            template=PodTemplateSpecArgs(
                metadata=ctx.pod_meta(workload, scrape_annotations(layout.SERVING_PORT, "/metrics")),
                spec=pod),
        ), opts=pulumi.ResourceOptions.merge(self.child, pulumi.ResourceOptions(
            depends_on=[training.initial_jobs[key]])))
        svc = service(ctx, f"{key}-serving", app, workload, [("http", layout.SERVING_PORT)], self.child)
        HorizontalPodAutoscaler(f"{key}-serving", metadata=ctx.meta(app, workload),
                                spec=HorizontalPodAutoscalerSpecArgs(
            scale_target_ref=CrossVersionObjectReferenceArgs(
                api_version="apps/v1", kind="Deployment", name=deployment.metadata.apply(lambda m: m.name)),
            min_replicas=low,
            max_replicas=high,
            metrics=[MetricSpecArgs(type="Resource", resource=ResourceMetricSourceArgs(
                name="cpu", target=MetricTargetArgs(type="Utilization",
                                                    average_utilization=serving.target_cpu_utilization)))],
        ), opts=self.child)
        PodDisruptionBudget(f"{key}-serving", metadata=ctx.meta(app, workload), spec=PodDisruptionBudgetSpecArgs(
            max_unavailable=PDB_MAX_UNAVAILABLE,
            selector=LabelSelectorArgs(match_labels=workload.selector),
            unhealthy_pod_eviction_policy="AlwaysAllow",
        ), opts=self.child)
        ingress_class = spec.k8s.ingress_class if serving.public else None
        policy = network.serving_policy(app, workload.selector, network.pods(registry.workload.selector),
                                        ingress_class)
        network_policy(ctx, f"{key}-serving-network", policy, workload, self.child)
        if ingress_class is not None:
            path, path_type, annotations = ingress_rule(key, spec.networking.allowed_cidrs)
            backend = IngressBackendArgs(service=IngressServiceBackendArgs(
                name=svc.metadata.apply(lambda m: m.name), port=ServiceBackendPortArgs(name="http")))
            host = spec.k8s.ingress_host
            Ingress(f"{key}-serving", metadata=ctx.meta(app, workload, annotations), spec=IngressSpecArgs(
                ingress_class_name=ingress_class,
                tls=[IngressTLSArgs(hosts=[host], secret_name=spec.k8s.ingress_tls_secret)],
                rules=[IngressRuleArgs(host=host, http=HTTPIngressRuleValueArgs(paths=[
                    HTTPIngressPathArgs(path=path, path_type=path_type, backend=backend)]))],
            ), opts=self.child)

        self.url = pulumi.Output.from_input(layout.service_url(app, ctx.namespace_name, spec.k8s.cluster_domain,
                                                               layout.SERVING_PORT))
        self.done()
