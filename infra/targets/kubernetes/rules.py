"""What the Kubernetes target refuses (`check`) and what it does not honour (`ignored`): pure, no SDK.

`ignored` is an audit of every key of the spec against what the program does: keys the target never uses are
reported when they differ from the baseline (`_UNUSED`, `_MODEL_UNUSED`); settings that ask for something the
target does not do (high availability, backups, versioning, tags, a ReadWriteMany volume, scaling to zero) are
reported when the spec writes them, or outside dev when the environment's defaults ask for them (staging and
prod defaults promise backups and versioning; a dev default is no news). Everything else is honoured.
"""

from __future__ import annotations

import re

from infra.problems import Notice, Problem
from infra.spec import PlatformSpec, Secret
from infra.targets.baseline import changed
from infra.targets.kubernetes import layout

#: Ingress classes a public endpoint may use: those whose prefix rewrite and source ranges
#: `serving.ingress_rule` sets.
PUBLIC_INGRESS_CLASSES: tuple[str, ...] = ("nginx",)

#: `{ref: "<secret>/<key>"}`: an existing Secret's name (RFC 1123 subdomain) and one of its keys.
_SECRET_KEY_REF = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)/([-._a-zA-Z0-9]+)$")
#: `{ref: "<secret>"}`: an existing Secret's name.
_SECRET_REF = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
#: A DNS name of lowercase labels (a host, a cluster domain), at most 253 characters.
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")

#: Longest name per kind of object: a CronJob's Jobs append 11 characters to its 52; everything else is a
#: DNS label (63).
NAME_LIMITS = {"cronjob": 52, "label": 63}


def parse_secret_ref(secret: Secret) -> tuple[str, str]:
    """`(secret name, key)` of a `{ref: "name/key"}` spec entry naming an existing Kubernetes Secret."""
    match = _SECRET_KEY_REF.match(secret.ref or "")
    if not match:
        raise ValueError(f"{secret.source}: ref {secret.ref!r} must name an existing Secret's key as 'name/key'")
    return match.group(1), match.group(3)


def uses_s3(spec: PlatformSpec) -> bool:
    """Whether the artifacts live on an S3-compatible endpoint (else on the tracking server's volume)."""
    return bool(spec.registry.artifacts.s3_endpoint)


def _public_problems(spec: PlatformSpec, index: int) -> list[Problem]:
    """A public endpoint that would not be what the spec says: on an ingress class whose prefix rewrite and
    source ranges this target does not configure, or open to anyone without authentication."""
    key = f"models[{index}].serving.public"
    ingress_class = spec.k8s.ingress_class
    problems = []
    if ingress_class not in PUBLIC_INGRESS_CLASSES:
        problems.append(Problem.at(key, (
            f"needs kubernetes.ingress_class {' or '.join(map(repr, PUBLIC_INGRESS_CLASSES))} (got "
            f"{ingress_class!r}); only there does this target strip the /<model> prefix and apply "
            "networking.allowed_cidrs")))
    if spec.models[index].serving.auth == "none" and not spec.networking.allowed_cidrs:
        problems.append(Problem.at(key, (
            "an endpoint with serving.auth 'none' and no networking.allowed_cidrs would be open to anyone; set "
            "serving.auth 'api_key' or list the clients in networking.allowed_cidrs")))
    return problems


def _secret_ref_problems(spec: PlatformSpec) -> list[Problem]:
    problems = []
    external = spec.registry.database.external_url
    if external is not None and external.ref is not None and not _SECRET_KEY_REF.match(external.ref):
        problems.append(Problem.at("registry.database.external_url.ref", (
            f"{external.ref!r} must name an existing Secret's key as '<secret>/<key>' (the key holding the URL)")))
    credentials = spec.registry.artifacts.s3_credentials
    if credentials is not None and credentials.ref is not None and not _SECRET_REF.match(credentials.ref):
        problems.append(Problem.at("registry.artifacts.s3_credentials.ref", (
            f"{credentials.ref!r} must name an existing Secret (holding AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY)")))
    return problems


def generated_names(spec: PlatformSpec) -> dict[str, tuple[str, str]]:
    """Every object name this target derives from the spec: key path that drives it -> (kind, name)."""
    names = {"kubernetes.namespace": ("label", layout.namespace_name(spec))}
    for i, model in enumerate(spec.models):
        key = f"models[{i}].name"
        for name in (layout.serving_name(model.name), layout.metrics_name(model.name),
                     layout.api_key_secret(model.name), layout.init_job(model.name, "")):
            names[f"{key} ({name})"] = ("label", name)
        for name in (layout.train_cronjob(model.name), layout.drift_cronjob(model.name)):
            names[f"{key} ({name})"] = ("cronjob", name)
    return names


def _name_problems(spec: PlatformSpec) -> list[Problem]:
    problems = []
    for key, (kind, name) in generated_names(spec).items():
        if len(name) > NAME_LIMITS[kind]:
            path = key.split(" ", 1)[0]
            problems.append(Problem.at(path, (
                f"makes the {kind} name {name!r} ({len(name)} characters); Kubernetes allows at most "
                f"{NAME_LIMITS[kind]}")))
    return problems


def _kubernetes_problems(spec: PlatformSpec) -> list[Problem]:
    """The `kubernetes` keys: DNS names where names go, and a host with its certificate for public endpoints."""
    k8s = spec.k8s
    problems = []
    for key, value in (("cluster_domain", k8s.cluster_domain), ("ingress_host", k8s.ingress_host)):
        if value is not None and not _DNS_NAME.match(value):
            problems.append(Problem.at(f"kubernetes.{key}", f"{value!r} is not a DNS name (lowercase letters, "
                                                            "digits, '-' and '.', e.g. 'ml.example.com')"))
    if k8s.ingress_tls_secret is not None and not _SECRET_REF.match(k8s.ingress_tls_secret):
        problems.append(Problem.at("kubernetes.ingress_tls_secret", (
            f"{k8s.ingress_tls_secret!r} must name an existing kubernetes.io/tls Secret of the namespace")))
    public = [f"models[{i}].serving.public" for i, m in enumerate(spec.models) if m.serving.public]
    if public:
        for key, what in (("ingress_host", "the DNS name the endpoints are published under"),
                          ("ingress_tls_secret", "the kubernetes.io/tls Secret holding its certificate")):
            if getattr(k8s, key) is None:
                problems.append(Problem.at(f"kubernetes.{key}", (
                    f"is required for a public endpoint ({', '.join(public)}): {what}; a public endpoint is "
                    "served over HTTPS only")))
    return problems


def _image_problems(spec: PlatformSpec) -> list[Problem]:
    """A build with nowhere to push it, and a pull Secret reference that is not a Secret's name."""
    problems = []
    if spec.runtime_image is None and not spec.k8s.image_repository:
        problems.append(Problem.at("kubernetes.image_repository", (
            "is required to push the runtime image the program builds (e.g. 'localhost:5001/shipyard-runtime'), "
            "or pin runtime_image to 'repository@sha256:<64 hex>'")))
    credentials = spec.k8s.image_pull_secret
    if credentials is not None and credentials.ref is not None and not _SECRET_REF.match(credentials.ref):
        problems.append(Problem.at("kubernetes.image_pull_secret.ref", (
            f"{credentials.ref!r} must name an existing kubernetes.io/dockerconfigjson Secret of the namespace")))
    return problems


def check(spec: PlatformSpec) -> list[Problem]:
    """Everything in `spec` the Kubernetes target refuses, located by key path."""
    problems: list[Problem] = []
    for i, model in enumerate(spec.models):
        if model.serving.auth == "iam":
            problems.append(Problem.at(f"models[{i}].serving.auth",
                                       "'iam' is not available on Kubernetes; use 'api_key'"))
        if model.serving.public:
            problems += _public_problems(spec, i)
    artifacts = spec.registry.artifacts
    if artifacts.s3_endpoint and not artifacts.bucket:
        problems.append(Problem.at("registry.artifacts.bucket", "is required with registry.artifacts.s3_endpoint"))
    if artifacts.bucket and not artifacts.s3_endpoint:
        problems.append(Problem.at("registry.artifacts.s3_endpoint", "is required with registry.artifacts.bucket"))
    return (problems + _kubernetes_problems(spec) + _image_problems(spec) + _secret_ref_problems(spec)
            + _name_problems(spec))


_CLUSTER = "this target deploys into an existing cluster"
_BUILT_IN_DB = "the built-in PostgreSQL is one StatefulSet pod on one volume"

#: Keys the Kubernetes target never uses -> what happens instead (reported when they differ from the baseline).
_UNUSED: dict[str, str] = {
    "networking.private": ("not used: every workload is a ClusterIP Service on the cluster network; only "
                           "serving.public publishes an endpoint (through the Ingress)"),
    "networking.existing_network": f"not used: {_CLUSTER}; pods use the cluster's pod network",
    "training.min_nodes": (f"not used: {_CLUSTER}; training runs as Jobs on its nodes, which this target neither "
                           "provisions nor keeps warm (size the cluster's node pools instead)"),
    "training.max_nodes": (f"not used: {_CLUSTER}; how many nodes training may use is the cluster autoscaler's "
                           "business (a training run is one pod)"),
    "registry.artifacts.noncurrent_version_retention_days": ("not used: the artifact volume keeps no versions, and "
                                                             "an S3 endpoint's lifecycle rules are its own"),
}

#: Per-model keys (under `models[i].`) never used -> what happens instead (reported when they differ).
_MODEL_UNUSED: dict[str, str] = {
    "serving.rollout.canary_percent": "not used: endpoints roll out with a plain rolling update",
    "serving.rollout.bake_minutes": "not used: endpoints roll out with a plain rolling update",
}


def _asked(spec: PlatformSpec, path: str) -> bool:
    """Whether the spec asks for the setting at `path`: written (differs from the baseline), or outside dev."""
    return spec.environment != "dev" or bool(changed(spec, path))


def _database_notices(spec: PlatformSpec) -> list[Notice]:
    """What the registry database settings ask for that the target does not do."""
    database = spec.registry.database
    if database.external_url is not None:
        return [Notice(key, "not used: the database is the external one "
                       "(registry.database.external_url); its size and operation are its provider's")
                for key in changed(spec, "registry.database.size", "registry.database.storage_gb",
                                   "registry.database.high_availability",
                                   "registry.database.backup_retention_days")]
    notices = []
    if database.high_availability:
        notices.append(Notice("registry.database.high_availability", (
            f"not met: {_BUILT_IN_DB}; for high availability give registry.database.external_url (a managed "
            "database, or one run by an operator such as CloudNativePG)")))
    if database.backup_retention_days and _asked(spec, "registry.database.backup_retention_days"):
        notices.append(Notice("registry.database.backup_retention_days", (
            f"{database.backup_retention_days} day(s) asked, none kept: {_BUILT_IN_DB} and takes no backups; back "
            "up its volume with the cluster's tooling (e.g. Velero) or use registry.database.external_url")))
    return notices


def _platform_notices(spec: PlatformSpec) -> list[Notice]:
    """Platform-wide settings that ask for what the target does not do, and keys it does not use here."""
    k8s, artifacts = spec.k8s, spec.registry.artifacts
    notices = []
    if spec.region:  # the baseline shares the spec's region: any region is news here
        notices.append(Notice("region", f"not used: {_CLUSTER}; where it runs is the kubeconfig context's cluster"))
    if spec.tags:
        notices.append(Notice("tags", (
            "not applied: Kubernetes objects carry the app.kubernetes.io/* labels (name, instance, component, "
            "part-of, managed-by, version), not the spec's tags")))
    if artifacts.versioning and _asked(spec, "registry.artifacts.versioning"):
        where = "the S3 endpoint's bucket versioning is configured there" if uses_s3(spec) else (
            "the artifact volume keeps only the current files")
        notices.append(Notice("registry.artifacts.versioning", f"not configured by this target: {where}"))
    if spec.protect and (uses_s3(spec) or spec.registry.database.external_url is not None):
        notices.append(Notice("protect", (
            "covers what this stack creates (namespace, volumes, database Secret and password, PostgreSQL); the "
            "external database and S3 bucket it uses are not managed here, so not protected by it")))
    if not k8s.shared_storage_class and spec.environment != "dev":
        notices.append(Notice("kubernetes.shared_storage_class", (
            "unset: the shared data volume is ReadWriteOnce, so every pod mounting it (serving replicas, drift "
            "monitors, drift-metrics servers) runs on the one node it is attached to: replicas do not spread over "
            "nodes, and draining that node waits until all of them can move. Name a ReadWriteMany class for a "
            "multi-node cluster (a one-node dev cluster needs none)")))
    public = any(m.serving.public for m in spec.models)
    if not public:
        unused = [key for key in ("ingress_class", "ingress_host", "ingress_tls_secret") if getattr(k8s, key)]
        unused += ["networking.allowed_cidrs"] if spec.networking.allowed_cidrs else []
        notices += [Notice(key if "." in key else f"kubernetes.{key}",
                           "not used: no model has serving.public, so no Ingress is declared") for key in unused]
    return notices


def ignored(spec: PlatformSpec) -> list[Notice]:
    """Every setting of `spec` the Kubernetes target does not honour, with what happens instead."""
    notices = [Notice(key, _UNUSED[key]) for key in changed(spec, *_UNUSED)]
    notices += _platform_notices(spec) + _database_notices(spec)
    for i, model in enumerate(spec.models):
        strategy = model.serving.rollout.strategy
        if strategy != "rolling":
            notices.append(Notice(f"models[{i}].serving.rollout.strategy", (
                f"{strategy!r} is not implemented on Kubernetes; the endpoint uses a plain rolling update (one pod "
                "surged, none unavailable), without canary_percent or bake_minutes")))
        keys = [f"models[{i}].{key}" for key in _MODEL_UNUSED]
        notices += [Notice(key, _MODEL_UNUSED[key.split(".", 1)[1]]) for key in changed(spec, *keys)]
        if model.serving.min_replicas == 0:
            notices.append(Notice(f"models[{i}].serving.min_replicas", (
                "0 becomes 1: the HorizontalPodAutoscaler cannot scale to zero (use KEDA or Knative for that)")))
        if model.monitoring.alerts:
            routed = ("its PrometheusRule alerts go wherever the cluster's Alertmanager routes them"
                      if spec.k8s.prometheus_operator else
                      "no alert rules are declared without kubernetes.prometheus_operator; drift reports land in "
                      "MLflow and on the data volume only")
            notices.append(Notice(f"models[{i}].monitoring.alerts", (
                f"not delivered on Kubernetes (no Alertmanager receiver is declared); {routed}")))
    return notices
