"""NetworkPolicies: the namespace denies everything, then each workload opens exactly the flows it needs.

Flows are plain data (`Policy`, `Rule`, `Peer`), decided by pure functions that the tests read directly;
`policy_spec` turns one into the SDK's typed `NetworkPolicySpecArgs`.

| workload      | ingress from                                        | egress to                                 |
|---------------|-----------------------------------------------------|-------------------------------------------|
| every pod     | -                                                   | kube-dns in kube-system (53 UDP/TCP)      |
| mlflow        | training, serving, drift monitor pods               | postgresql / external DB, S3 endpoint     |
| postgresql    | mlflow                                              | -                                         |
| serving       | pods of the namespace, Prometheus, ingress (public) | mlflow                                    |
| training      | -                                                   | mlflow (+ HTTPS when a dataset is remote) |
| drift monitor | -                                                   | mlflow (+ the API server when it retrains)|
| drift metrics | Prometheus                                          | -                                         |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, LabelSelectorRequirementArgs
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)

from infra.targets.kubernetes import layout

#: Where the cluster's Prometheus runs (kube-prometheus-stack's usual namespace).
PROMETHEUS_NAMESPACE = "monitoring"
#: Namespace of the ingress controller, by ingress class; an unlisted class is looked for in a namespace of its name.
INGRESS_NAMESPACES: dict[str, str] = {
    "nginx": "ingress-nginx",
    "traefik": "traefik",
    "haproxy": "haproxy-controller",
}
#: Dataset URI schemes that need the network (demo:// and local paths do not).
REMOTE_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "abfss", "http", "https")
NAMESPACE_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Peer:
    """One side of a flow: pods (of this namespace unless `namespace`), or every pod of a namespace.

    `names` selects pods by `app.kubernetes.io/name` (In), together with `pods` labels.
    """

    pods: tuple[tuple[str, str], ...] = ()
    names: tuple[str, ...] = ()
    namespace: str | None = None


@dataclass(frozen=True)
class Rule:
    """Allowed traffic: to/from any of `peers` (none: anywhere) on `ports` ((port, protocol) pairs)."""

    peers: tuple[Peer, ...]
    ports: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Policy:
    """A NetworkPolicy over the pods matching `selector` (empty: every pod of the namespace)."""

    name: str
    selector: tuple[tuple[str, str], ...]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    types: tuple[str, ...] = field(default=("Ingress", "Egress"))


def tcp(*ports: int) -> tuple[tuple[int, str], ...]:
    """TCP ports."""
    return tuple((p, "TCP") for p in ports)


def pods(labels: dict[str, str]) -> Peer:
    """Pods of this namespace with these labels."""
    return Peer(pods=tuple(sorted(labels.items())))


def default_deny() -> Policy:
    """Deny all ingress and egress for every pod of the namespace: what is not allowed below is refused."""
    return Policy("default-deny", ())


def allow_dns() -> Policy:
    """Every pod may resolve names with the cluster DNS (kube-dns / CoreDNS in kube-system)."""
    dns = Peer(pods=(("k8s-app", "kube-dns"),), namespace="kube-system")
    return Policy("allow-dns", (), egress=(Rule((dns,), ((layout.DNS_PORT, "UDP"), (layout.DNS_PORT, "TCP"))),),
                  types=("Egress",))


def s3_port(endpoint: str) -> int:
    """The port of an S3-compatible endpoint URL (its explicit port, else 443 for https and 80 for http)."""
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"registry.artifacts.s3_endpoint: {endpoint!r} is not an http(s) URL")
    return parsed.port or (443 if parsed.scheme == "https" else 80)


def is_remote(uri: str) -> bool:
    """Whether reading `uri` needs the network."""
    return urlparse(uri).scheme in REMOTE_SCHEMES


def mlflow_policy(selector: dict[str, str], clients: Peer, database: Peer | None, s3_endpoint: str | None,
                  extra_ports: tuple[int, ...] = ()) -> Policy:
    """MLflow: called by the pipelines pods; calls its database (`None`: an external one, any address,
    PostgreSQL's port), the S3 endpoint when artifacts live there, and any address on `extra_ports` (a cloud
    object store and its workload-identity endpoint, on a cloud's cluster profile)."""
    egress = [Rule((database,) if database else (), tcp(layout.POSTGRES_PORT))]
    if s3_endpoint:
        egress.append(Rule((), tcp(s3_port(s3_endpoint))))
    if extra_ports:
        egress.append(Rule((), tcp(*extra_ports)))
    return Policy(layout.MLFLOW, tuple(sorted(selector.items())),
                  ingress=(Rule((clients,), tcp(layout.MLFLOW_PORT)),), egress=tuple(egress))


def postgres_policy(selector: dict[str, str], mlflow: Peer) -> Policy:
    """PostgreSQL: reached by MLflow only; calls nothing."""
    return Policy(layout.POSTGRES, tuple(sorted(selector.items())),
                  ingress=(Rule((mlflow,), tcp(layout.POSTGRES_PORT)),))


def serving_policy(name: str, selector: dict[str, str], mlflow: Peer, ingress_class: str | None) -> Policy:
    """A model endpoint: called by pods of the namespace, Prometheus, and the ingress controller when public."""
    callers = [Peer(), Peer(namespace=PROMETHEUS_NAMESPACE)]
    if ingress_class is not None:
        callers.append(Peer(namespace=INGRESS_NAMESPACES.get(ingress_class, ingress_class)))
    return Policy(name, tuple(sorted(selector.items())),
                  ingress=(Rule(tuple(callers), tcp(layout.SERVING_PORT)),),
                  egress=(Rule((mlflow,), tcp(layout.MLFLOW_PORT)),))


def training_policy(name: str, selector: dict[str, str], mlflow: Peer, remote_data: bool) -> Policy:
    """Training: reached by nobody; calls MLflow, and HTTPS anywhere when a dataset lives in remote storage."""
    egress = [Rule((mlflow,), tcp(layout.MLFLOW_PORT))]
    if remote_data:
        egress.append(Rule((), tcp(443)))
    return Policy(name, tuple(sorted(selector.items())), egress=tuple(egress))


def monitor_policy(name: str, selector: dict[str, str], mlflow: Peer, retrains: bool) -> Policy:
    """The drift monitor: reached by nobody; calls MLflow, and the API server when it may start training."""
    egress = [Rule((mlflow,), tcp(layout.MLFLOW_PORT))]
    if retrains:
        egress.append(Rule((), tcp(*layout.API_SERVER_PORTS)))
    return Policy(name, tuple(sorted(selector.items())), egress=tuple(egress))


def metrics_policy(name: str, selector: dict[str, str]) -> Policy:
    """The drift-metrics file server: scraped by Prometheus; calls nothing."""
    return Policy(name, tuple(sorted(selector.items())),
                  ingress=(Rule((Peer(namespace=PROMETHEUS_NAMESPACE),), tcp(layout.METRICS_PORT)),))


def _selector(labels: tuple[tuple[str, str], ...], names: tuple[str, ...] = ()) -> LabelSelectorArgs:
    expressions = [LabelSelectorRequirementArgs(key="app.kubernetes.io/name", operator="In", values=list(names))]
    return LabelSelectorArgs(match_labels=dict(labels) or None, match_expressions=expressions if names else None)


def _peer(peer: Peer) -> NetworkPolicyPeerArgs:
    namespace = None
    if peer.namespace is not None:
        namespace = LabelSelectorArgs(match_labels={NAMESPACE_LABEL: peer.namespace})
    pod_selector = _selector(peer.pods, peer.names) if (peer.pods or peer.names or peer.namespace is None) else None
    return NetworkPolicyPeerArgs(namespace_selector=namespace, pod_selector=pod_selector)


def _ports(rule: Rule) -> list[NetworkPolicyPortArgs]:
    return [NetworkPolicyPortArgs(port=port, protocol=protocol) for port, protocol in rule.ports]


def policy_spec(policy: Policy) -> NetworkPolicySpecArgs:
    """The typed spec of a policy."""
    return NetworkPolicySpecArgs(
        pod_selector=_selector(policy.selector),
        policy_types=list(policy.types),
        ingress=[NetworkPolicyIngressRuleArgs(from_=[_peer(p) for p in r.peers] or None, ports=_ports(r))
                 for r in policy.ingress] or None,
        egress=[NetworkPolicyEgressRuleArgs(to=[_peer(p) for p in r.peers] or None, ports=_ports(r))
                for r in policy.egress] or None,
    )
