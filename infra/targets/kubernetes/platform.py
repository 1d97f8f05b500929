"""Platform-wide objects, owned by the `Platform` component itself: the namespace, its baseline
NetworkPolicies (deny everything, allow DNS) and the shared data volume.

The shared data volume holds what serving, the drift monitor and the metrics file server exchange: inference
logs, drift reports and drift metrics. It is ReadWriteMany on `kubernetes.shared_storage_class`, else
ReadWriteOnce, and then those pods all run on the volume's node (`workload.data_pod_affinity`). MLflow's
artifacts live elsewhere (their own volume or the S3 endpoint) and reach the pipelines through the tracking
server's artifact proxy.
"""

from __future__ import annotations

import dataclasses

import pulumi
from pulumi_kubernetes.core.v1 import Namespace
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets.kubernetes import layout, network
from infra.targets.kubernetes.context import Context, claim, network_policy, stateful
from infra.targets.kubernetes.labels import Workload
from infra.targets.kubernetes.sizes import STORAGE_GB

#: Pod Security Admission: every pod of the namespace must meet the `restricted` profile.
POD_SECURITY = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}


def declare_platform(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage,
                     secrets: SecretValues) -> Context:
    """Declare the namespace, the baseline policies and the data volume; return the shared context."""
    child = pulumi.ResourceOptions(parent=platform)
    identity = Workload(name=spec.name, instance=spec.prefix, component="platform", part_of=spec.name,
                        version=package.version.split("+", 1)[0])
    # Deleting the namespace would delete the database's volume with it: it is state, protected in prod.
    namespace = Namespace("namespace", metadata=ObjectMetaArgs(
        name=layout.namespace_name(spec), labels={**identity.labels, **POD_SECURITY}), opts=stateful(child, spec))
    ctx = Context(spec=spec, package=package, namespace=namespace.metadata.apply(lambda m: m.name),
                  namespace_name=layout.namespace_name(spec), data_claim=pulumi.Output.from_input(layout.DATA_CLAIM),
                  secrets=secrets)
    for policy in (network.default_deny(), network.allow_dns()):
        network_policy(ctx, policy.name, policy, identity, child)
    data = claim(ctx, "data", layout.DATA_CLAIM, identity, STORAGE_GB["data"], layout.data_access_mode(spec),
                 stateful(child, spec))
    return dataclasses.replace(ctx, data_claim=data.metadata.apply(lambda m: m.name))
