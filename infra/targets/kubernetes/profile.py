"""What a cloud's cluster profile changes in the Kubernetes target's workloads: a few narrow, typed hooks.

A cloud target with `<cloud>.compute: kubernetes` creates a managed cluster and builds exactly the Kubernetes
target's workloads on it (`program.build_workloads`) through the cluster's provider. Everything else about
the workloads stays as the Kubernetes target makes them; a profile can change only:

- `provider`: the Kubernetes provider of the created cluster, passed to every component (`providers=`);
- `image`: the image every workload runs (the cloud's registry), instead of the spec's `runtime_image`;
- `database_url`: the backend-store URL of the cloud's managed PostgreSQL (a secret), instead of the built-in
  StatefulSet; `database_ready`: what the tracking server waits for before it starts;
- `artifacts`: the cloud object store MLflow proxies artifacts to (`gs://`, `s3://`, `wasbs://`), reached with the
  tracking server's workload identity, instead of a volume; `artifact_ports`: the TCP ports its NetworkPolicy
  opens for that (the store's API and the identity endpoint);
- `account_annotations`: annotations of ServiceAccounts by name (workload identity);
- `pod_labels`: extra labels of a workload's pods by workload name (`app.kubernetes.io/name`; AKS's workload
  identity webhook acts only on pods labelled `azure.workload.identity/use`);
- `placement`: node selector and tolerations of pods by `app.kubernetes.io/component` (node pools).

`ClusterProfile()` changes nothing: the Kubernetes target's own plans are built with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_kubernetes.core.v1 import TolerationArgs

from infra.targets.cluster import POOL_LABEL, SYSTEM_COMPONENTS, TRAINING_TAINT


@dataclass(frozen=True)
class Placement:
    """Where a component's pods run: the node labels they require, the node taints they tolerate
    ((key, value) pairs, effect NoSchedule)."""

    node_selector: Mapping[str, str]
    tolerations: tuple[tuple[str, str], ...] = ()

    def toleration_args(self) -> list[TolerationArgs]:
        """The tolerations as the SDK takes them."""
        return [TolerationArgs(key=key, operator="Equal", value=value, effect="NoSchedule")
                for key, value in self.tolerations]


def pool_placement() -> dict[str, Placement]:
    """Where each component's pods run on a cloud's cluster: training on the training pools (tolerating their
    taint), the rest on the system pool (`infra.targets.cluster`'s pool labels and taints)."""
    places = {component: Placement({POOL_LABEL: "system"}) for component in SYSTEM_COMPONENTS}
    places["training"] = Placement({POOL_LABEL: "training"}, (TRAINING_TAINT,))
    return places


@dataclass(frozen=True)
class ClusterProfile:
    """The hooks a cloud's cluster profile sets (see the module docstring); the defaults change nothing."""

    provider: pulumi.ProviderResource | None = None
    image: pulumi.Input[str] | None = None
    database_url: pulumi.Input[str] | None = None
    database_ready: Sequence[pulumi.Resource] = ()
    artifacts: pulumi.Input[str] | None = None
    artifact_ports: tuple[int, ...] = ()
    account_annotations: Mapping[str, Mapping[str, pulumi.Input[str]]] = field(default_factory=dict)
    pod_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    placement: Mapping[str, Placement] = field(default_factory=dict)

    def options(self, parent: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options of a resource owned by `parent`, on the cluster's provider when the profile has one."""
        if self.provider is None:
            return pulumi.ResourceOptions(parent=parent)
        return pulumi.ResourceOptions(parent=parent, providers={"kubernetes": self.provider})
