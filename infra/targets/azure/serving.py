"""Serving on Azure: per model a Container App running `python -m pipelines serve` on the internal
environment, scaling between the spec's replica bounds on CPU and concurrent requests.

Each revision is named by a hash of everything it runs (image, wheel, run configuration, sizes), so a change
makes a new revision and an unchanged spec makes none. `rolling` runs one revision at a time (Container Apps
moves the traffic once the new one is ready). `canary` and `blue_green` keep several revisions: the first
deploy pins all traffic to its revision (label `stable`); later revisions start with none, and the
operator shifts it (docs/azure.md, "Rollouts"). `serving.auth: api_key` generates a key kept in Key Vault and
handed to the server as SHIPYARD_API_KEY.
"""

from __future__ import annotations

import hashlib
import json

import pulumi
import pulumi_random
from pulumi_azure_native import app, keyvault

from infra.components import ServingEndpoint
from infra.spec import ModelSpec, PlatformSpec, RolloutSpec
from infra.targets.azure import iam, layout
from infra.targets.azure.foundation import Foundation
from infra.targets.azure.registry import AzureModelRegistry
from infra.targets.azure.sizes import replica
from infra.targets.azure.training import AzureTrainingCluster
from pipelines.adapters.azure import bootstrap_command

PORT = 8080
#: Concurrent requests per replica before the HTTP rule adds one.
CONCURRENT_REQUESTS = 50


def revision_suffix(*parts: str) -> str:
    """A revision suffix that changes exactly when what the revision runs does ('r' + 8 hex digits)."""
    return "r" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:8]


def traffic(rollout: RolloutSpec, app_name: str, suffix: str) -> tuple[str, list[app.TrafficWeightArgs]]:
    """(revisions mode, initial traffic) of the spec's rollout (see the module's docstring)."""
    if rollout.strategy == "rolling":
        return "Single", [app.TrafficWeightArgs(latest_revision=True, weight=100)]
    return "Multiple", [app.TrafficWeightArgs(revision_name=f"{app_name}--{suffix}", weight=100, label="stable")]


def scale_rules(model: ModelSpec) -> list[app.ScaleRuleArgs]:
    """CPU utilisation (the spec's target) and concurrent requests."""
    return [
        app.ScaleRuleArgs(name="cpu", custom=app.CustomScaleRuleArgs(type="cpu", metadata={
            "type": "Utilization", "value": str(model.serving.target_cpu_utilization)})),
        app.ScaleRuleArgs(name="http", http=app.HttpScaleRuleArgs(metadata={
            "concurrentRequests": str(CONCURRENT_REQUESTS)})),
    ]


class AzureServingEndpoint(ServingEndpoint):
    """One model's Container App, its scaling and rollout."""

    def __init__(self, name: str, spec: PlatformSpec, model: ModelSpec, base: Foundation,
                 registry: AzureModelRegistry, training: AzureTrainingCluster,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        app_name = layout.serving_app(spec, model.name)
        workload = base.workload(f"{model.name}-serving")
        registry.grant("packages", workload, "blob_reader")
        registry.grant("mlflow", workload, "blob_reader")
        registry.grant("inference", workload, "blob_contributor")
        cpu, memory, profile = replica(model.serving.size, spec.azure_settings.gpu_workload_profile)
        env = [*base.runtime_env(registry.account_name, workload.client_id),
               app.EnvironmentVarArgs(name="SHIPYARD_RUN_CONFIG", value=training.run_configs[model.name].uri)]
        secrets = []
        if model.serving.auth == "api_key":
            secrets.append(self._api_key(spec, model, base, workload))
            env.append(app.EnvironmentVarArgs(name="SHIPYARD_API_KEY", secret_ref="api-key"))
        serving = model.serving.model_dump(mode="json")
        suffix = pulumi.Output.all(base.image, training.package_uri, training.run_configs[model.name].uri).apply(
            lambda v: revision_suffix(*v, json.dumps(serving, sort_keys=True), str(cpu), memory, profile))
        mode = traffic(model.serving.rollout, app_name, "")[0]
        weights = suffix.apply(lambda s: traffic(model.serving.rollout, app_name, s)[1])
        ignore = ["configuration.ingress.traffic"] if mode == "Multiple" else []
        container_app = app.ContainerApp(
            f"{spec.prefix}-{model.name}", container_app_name=app_name, resource_group_name=base.group_name,
            location=base.location, managed_environment_id=base.environment.id, workload_profile_name=profile,
            identity=app.ManagedServiceIdentityArgs(type="UserAssigned", user_assigned_identities=[workload.id]),
            configuration=app.ConfigurationArgs(
                active_revisions_mode=mode, max_inactive_revisions=5,
                ingress=app.IngressArgs(external=True, target_port=PORT, transport="http", allow_insecure=False,
                                        traffic=weights),
                registries=[app.RegistryCredentialsArgs(server=base.registry.login_server, identity=workload.id)],
                secrets=secrets or None),
            template=app.TemplateArgs(
                revision_suffix=suffix,
                containers=[app.ContainerArgs(
                    name="server", image=base.image, env=env,
                    command=training.package_uri.apply(lambda uri: bootstrap_command(
                        uri, "serve", "--host", "0.0.0.0", "--port", str(PORT))),
                    resources=app.ContainerResourcesArgs(cpu=cpu, memory=memory),
                    probes=[
                        app.ContainerAppProbeArgs(type="Startup", period_seconds=5, failure_threshold=60,
                                                  http_get=app.ContainerAppProbeHttpGetArgs(path="/health", port=PORT)),
                        app.ContainerAppProbeArgs(type="Readiness", period_seconds=5,
                                                  http_get=app.ContainerAppProbeHttpGetArgs(path="/ping", port=PORT)),
                        app.ContainerAppProbeArgs(type="Liveness", period_seconds=20, failure_threshold=3,
                                                  http_get=app.ContainerAppProbeHttpGetArgs(path="/health",
                                                                                            port=PORT))])],
                scale=app.ScaleArgs(min_replicas=model.serving.min_replicas, max_replicas=model.serving.max_replicas,
                                    rules=scale_rules(model))),
            tags=base.tags, opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore,
                                                        depends_on=[*workload.grants]))
        self.url = container_app.configuration.apply(
            lambda c: f"https://{c.ingress.fqdn}/invocations" if c and c.ingress else "")
        self.done(app_name=container_app.name)

    def _api_key(self, spec: PlatformSpec, model: ModelSpec, base: Foundation,
                 workload: iam.Workload) -> app.SecretArgs:
        """A generated API key in Key Vault, readable by this endpoint's identity only."""
        key = pulumi_random.RandomPassword(f"{spec.prefix}-{model.name}-api-key", length=40, special=False,
                                           opts=self.child)
        name = f"{model.name}-api-key"
        secret = keyvault.Secret(
            f"{spec.prefix}-{model.name}-api-key", secret_name=name, vault_name=base.vault.name,
            resource_group_name=base.group_name, tags=base.tags, opts=self.child,
            properties=keyvault.SecretPropertiesArgs(value=pulumi.Output.secret(key.result), content_type="text/plain"))
        iam.grant(workload, "secrets_user", secret.id, f"secret-{name}", base.subscription, self.child)
        uri = base.vault.properties.vault_uri.apply(lambda v: f"{v.rstrip('/')}/secrets/{name}")
        return app.SecretArgs(name="api-key", key_vault_url=uri, identity=workload.id)
