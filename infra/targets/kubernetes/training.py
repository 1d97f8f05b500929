"""The training cluster on Kubernetes: the namespace's training CronJobs, fed by the program itself.

The program ships the pipelines wheel as an immutable ConfigMap named by the package's content hash
(an unchanged tree gives the same name, so nothing changes; changed code gives a new ConfigMap and new
pod templates), and each model's run configuration as an immutable ConfigMap named by its own hash.
Per model: a CronJob on the continuous-training schedule, and an initial Job that Pulumi waits for, so
serving starts after a first model is registered. The Job is named by a hash of what it runs: it runs
again exactly when the code, the configuration or the image changes.
"""

from __future__ import annotations

import base64
import json

import pulumi
from pulumi_kubernetes.batch.v1 import Job, JobSpecArgs
from pulumi_kubernetes.core.v1 import ConfigMap

from infra.components import TrainingCluster
from infra.packaging import PipelinePackage
from infra.runconfig import pipeline_config
from infra.spec import ModelSpec, PlatformSpec
from infra.targets.kubernetes import layout, network
from infra.targets.kubernetes.context import Context, cron_job, job_spec, network_policy, service_account
from infra.targets.kubernetes.labels import Workload, component_selector
from infra.targets.kubernetes.registry import KubernetesRegistry
from infra.targets.kubernetes.sizes import resources
from infra.targets.kubernetes.workload import PipelinesRuntime, pipelines_pod

#: Finished training Jobs of the CronJob are kept this long for their logs, then garbage-collected.
FINISHED_JOB_TTL_SECONDS = 7 * 24 * 3600
#: Pod retries of one training run (within its time limit).
BACKOFF_LIMIT = 2


def wheel_payload(package: PipelinePackage) -> str:
    """The wheel, base64-encoded for a ConfigMap's binaryData; refused when it would not fit in one."""
    data = package.path.read_bytes()
    if len(data) > layout.MAX_WHEEL_BYTES:
        raise ValueError(f"the pipelines wheel is {len(data)} bytes; a ConfigMap carries at most "
                         f"{layout.MAX_WHEEL_BYTES} (keep data files out of pipelines/)")
    return base64.b64encode(data).decode()


def run_config(spec: PlatformSpec, model: ModelSpec, namespace: str) -> str:
    """The model's run configuration on this cluster, as the JSON document its pods read."""
    retrain = (f"kubernetes-job:{namespace}/{layout.train_cronjob(model.name)}"
               if model.monitoring.retrain_on_drift else "none")
    document = pipeline_config(
        spec, model,
        tracking_uri=layout.tracking_uri(namespace, spec.k8s.cluster_domain),
        inference_log_uri=layout.inference_log_uri(model.name),
        reports_uri=layout.reports_uri(model.name),
        sinks=["stdout", f"prometheus:{layout.metrics_dir(model.name)}/{layout.METRICS_FILE}"],
        retrain=retrain,
    )
    return json.dumps(document, indent=2, sort_keys=True)


def time_limit_seconds(spec: PlatformSpec) -> int:
    """A training run's deadline (all retries included)."""
    return spec.training.time_limit_minutes * 60


class KubernetesTraining(TrainingCluster):
    """Training CronJobs and initial Jobs, one per model. `runtimes` tells serving and monitoring which wheel
    and run configuration to mount; `initial_jobs` are what serving waits for."""

    runtimes: dict[str, PipelinesRuntime]
    initial_jobs: dict[str, Job]

    def __init__(self, name: str, ctx: Context, registry: KubernetesRegistry,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        spec, package = ctx.spec, ctx.package
        shared = Workload(layout.APP_TRAINING, spec.prefix, "training", spec.name, package.version)
        wheel = ConfigMap("pipelines-wheel", metadata=ctx.meta(layout.wheel_configmap(package), shared),
                          binary_data={layout.WHEEL_KEY: wheel_payload(package)}, immutable=True, opts=self.child)
        account = service_account(ctx, "training", layout.APP_TRAINING, shared, self.child)
        selector = {**component_selector(spec.name, "training"), "app.kubernetes.io/name": layout.APP_TRAINING}
        remote = any(network.is_remote(m.pipeline.dataset_uri) for m in spec.models)
        policy = network.training_policy(layout.APP_TRAINING, selector, network.pods(registry.workload.selector),
                                         remote)
        network_policy(ctx, "training-network", policy, shared, self.child)

        wheel_name = wheel.metadata.apply(lambda m: m.name)
        account_name = account.metadata.apply(lambda m: m.name)
        self.runtimes, self.initial_jobs = {}, {}
        for model in spec.models:
            document = run_config(spec, model, ctx.namespace_name)
            workload = ctx.workload(layout.APP_TRAINING, "training", model.name, runs_pipelines=True)
            config = ConfigMap(f"{model.name}-run-config",
                               metadata=ctx.meta(layout.config_configmap(model.name, document), workload),
                               data={f"{model.name}.json": document}, immutable=True, opts=self.child)
            runtime = PipelinesRuntime(image=ctx.image, wheel_configmap=wheel_name, wheel_filename=package.filename,
                                       config_configmap=config.metadata.apply(lambda m: m.name), model=model.name,
                                       pull_secret=ctx.pull_secret)
            self.runtimes[model.name] = runtime
            cron_job(ctx, f"{model.name}-train", layout.train_cronjob(model.name), workload, spec.training.schedule,
                     self._job_spec(ctx, runtime, workload, account_name, FINISHED_JOB_TTL_SECONDS), self.child,
                     starting_deadline_seconds=3600, successful_history=3)
            pod_inputs = [ctx.image_identity, layout.wheel_configmap(package),
                          layout.config_configmap(model.name, document), spec.training.model_dump(mode="json")]
            job_name = layout.init_job(model.name, pod_inputs)
            # Pulumi waits for the initial Job to complete (up to the time limit), so `up` ends with a model.
            timeout = {"pulumi.com/timeoutSeconds": str(time_limit_seconds(spec) + 300)}
            self.initial_jobs[model.name] = Job(
                f"{model.name}-train-initial",
                metadata=ctx.meta(job_name, workload, timeout),
                spec=self._job_spec(ctx, runtime, workload, account_name, None),
                opts=pulumi.ResourceOptions.merge(self.child, pulumi.ResourceOptions(depends_on=[registry])))

        self.cluster_name = pulumi.Output.from_input(ctx.namespace_name)
        self.package_uri = wheel.metadata.apply(lambda m: f"configmap://{ctx.namespace_name}/{m.name}")
        self.done(package_version=package.version)

    @staticmethod
    def _job_spec(ctx: Context, runtime: PipelinesRuntime, workload: Workload, account: pulumi.Input[str],
                  ttl: int | None) -> JobSpecArgs:
        """One training run: `python -m pipelines run` for the model, bounded in time and retries."""
        training = ctx.spec.training
        pod = pipelines_pod(runtime, "run", service_account=account,
                            container_resources=resources(training.size, gpus=training.gpu_count),
                            restart_policy="Never", spot=training.spot, gpus=training.gpu_count,
                            placement=ctx.placement("training"))
        return job_spec(ctx, workload, pod, backoff_limit=BACKOFF_LIMIT, deadline_seconds=time_limit_seconds(ctx.spec),
                        ttl_seconds=ttl)
