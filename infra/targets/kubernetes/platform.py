"""Platform-wide objects, owned by the `Platform` component itself: the namespace, its baseline
NetworkPolicies (deny everything, allow DNS), the shared data volume, and the runtime image (built and pushed
to `kubernetes.image_repository` unless the spec pins one or a cloud's cluster profile brings its own) with
the pods' image pull Secret when the spec gives registry credentials.

The shared data volume holds what serving, the drift monitor and the metrics file server exchange: inference
logs, drift reports and drift metrics. It is ReadWriteMany on `kubernetes.shared_storage_class`, else
ReadWriteOnce, and then those pods all run on the volume's node (`workload.data_pod_affinity`). MLflow's
artifacts live elsewhere (their own volume or the S3 endpoint) and reach the pipelines through the tracking
server's artifact proxy.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import pulumi
from pulumi_kubernetes.core.v1 import Namespace, Secret
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.components import RegistryLogin, RuntimeImage
from infra.image import ImagePlan, parse_reference, registry_host
from infra.packaging import PipelinePackage
from infra.secrets import SecretValues
from infra.spec import PlatformSpec
from infra.targets.kubernetes import layout, network
from infra.targets.kubernetes.context import Context, claim, network_policy, stateful
from infra.targets.kubernetes.labels import Workload
from infra.targets.kubernetes.profile import ClusterProfile
from infra.targets.kubernetes.sizes import STORAGE_GB

#: Pod Security Admission: every pod of the namespace must meet the `restricted` profile.
POD_SECURITY = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}


def docker_config(host: str, credentials: str) -> str:
    """A `.dockerconfigjson` document for one registry from 'USER:PASSWORD'."""
    user, _, password = credentials.partition(":")
    auth = base64.b64encode(credentials.encode()).decode()
    return json.dumps({"auths": {host: {"username": user, "password": password, "auth": auth}}}, sort_keys=True)


def image_registry(spec: PlatformSpec) -> str:
    """The registry the runtime image is pulled from: that of the pinned image, or of the repository pushed to."""
    repository = parse_reference(spec.runtime_image).repository if spec.runtime_image else spec.k8s.image_repository
    return registry_host(repository or "")


def declare_image(spec: PlatformSpec, plan: ImagePlan, secrets: SecretValues, pull_meta: ObjectMetaArgs,
                  opts: pulumi.ResourceOptions) -> tuple[pulumi.Output[str], pulumi.Output[str] | None]:
    """(the image every workload runs, the pull Secret's name or None): the pinned image or the pushed digest.
    `{secure: 'USER:PASSWORD'}` credentials push the build and fill a dockerconfigjson Secret (`pull_meta`);
    `{ref: name}` names an existing one."""
    credentials = spec.k8s.image_pull_secret
    login, pull_secret = None, None
    if credentials is not None and credentials.ref is not None:
        pull_secret = pulumi.Output.from_input(credentials.ref)
    elif credentials is not None:
        value, host = secrets.value(credentials), image_registry(spec)
        login = RegistryLogin(address=host, username=value.apply(lambda v: v.partition(":")[0]),
                              password=pulumi.Output.secret(value.apply(lambda v: v.partition(":")[2])))
        secret = Secret("image-pull", metadata=pull_meta, type="kubernetes.io/dockerconfigjson",
                        string_data={".dockerconfigjson": pulumi.Output.secret(
                            value.apply(lambda v: docker_config(host, v)))}, opts=opts)
        pull_secret = secret.metadata.apply(lambda m: m.name)
    if plan.pinned is not None:
        return pulumi.Output.from_input(plan.pinned), pull_secret
    image = RuntimeImage(f"{spec.prefix}-runtime", plan, spec.k8s.image_repository or "", login, opts)
    return image.ref, pull_secret


def declare_platform(platform: pulumi.ComponentResource, spec: PlatformSpec, package: PipelinePackage,
                     image: ImagePlan, secrets: SecretValues, profile: ClusterProfile) -> Context:
    """Declare the namespace, the baseline policies, the data volume and the runtime image (unless the cluster
    profile brings its own); return the shared context."""
    child = profile.options(platform)
    identity = Workload(name=spec.name, instance=spec.prefix, component="platform", part_of=spec.name,
                        version=package.version.split("+", 1)[0])
    # Deleting the namespace would delete the database's volume with it: it is state, protected in prod.
    namespace = Namespace("namespace", metadata=ObjectMetaArgs(
        name=layout.namespace_name(spec), labels={**identity.labels, **POD_SECURITY}), opts=stateful(child, spec))
    namespace_name = namespace.metadata.apply(lambda m: m.name)
    if profile.image is not None:  # a cloud's cluster profile built and pushed it to its own registry
        runtime, pull_secret = pulumi.Output.from_input(profile.image), None
    else:
        pull_meta = ObjectMetaArgs(name=layout.PULL_SECRET, namespace=namespace_name, labels=identity.labels)
        runtime, pull_secret = declare_image(spec, image, secrets, pull_meta, child)
    ctx = Context(spec=spec, package=package, namespace=namespace_name, namespace_name=layout.namespace_name(spec),
                  data_claim=pulumi.Output.from_input(layout.DATA_CLAIM), secrets=secrets, image=runtime,
                  image_identity=image.identity, pull_secret=pull_secret, profile=profile)
    for policy in (network.default_deny(), network.allow_dns()):
        network_policy(ctx, policy.name, policy, identity, child)
    data = claim(ctx, "data", layout.DATA_CLAIM, identity, STORAGE_GB["data"], layout.data_access_mode(spec),
                 stateful(child, spec))
    return dataclasses.replace(ctx, data_claim=data.metadata.apply(lambda m: m.name))
