"""What the Kubernetes target refuses (`check`) and what it does not honour (`ignored`): pure, no SDK."""

from __future__ import annotations

import re

from infra.problems import Notice, Problem
from infra.spec import PlatformSpec, Secret
from infra.targets.kubernetes import layout

#: Ingress classes a public endpoint may use: those whose prefix rewrite and source ranges
#: `serving.ingress_rule` sets.
PUBLIC_INGRESS_CLASSES: tuple[str, ...] = ("nginx",)

#: `{ref: "<secret>/<key>"}`: an existing Secret's name (RFC 1123 subdomain) and one of its keys.
_SECRET_KEY_REF = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)/([-._a-zA-Z0-9]+)$")
#: `{ref: "<secret>"}`: an existing Secret's name.
_SECRET_REF = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

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
    return problems + _secret_ref_problems(spec) + _name_problems(spec)


def ignored(spec: PlatformSpec) -> list[Notice]:
    """Every setting of `spec` the Kubernetes target does not honour, with what happens instead."""
    notices = []
    if spec.training.min_nodes:
        notices.append(Notice("training.min_nodes", (
            f"{spec.training.min_nodes} is ignored on Kubernetes; training runs as Jobs on the existing cluster's "
            "nodes, which this target neither provisions nor keeps warm (size the cluster's node pools instead)")))
    for i, model in enumerate(spec.models):
        strategy = model.serving.rollout.strategy
        if strategy != "rolling":
            notices.append(Notice(f"models[{i}].serving.rollout.strategy", (
                f"{strategy!r} is not implemented on Kubernetes; the endpoint uses a plain rolling update (one pod "
                "surged, none unavailable), without canary_percent or bake_minutes")))
        if model.monitoring.alerts:
            routed = ("its PrometheusRule alerts go wherever the cluster's Alertmanager routes them"
                      if spec.k8s.prometheus_operator else
                      "no alert rules are declared without kubernetes.prometheus_operator; drift reports land in "
                      "MLflow and on the data volume only")
            notices.append(Notice(f"models[{i}].monitoring.alerts", (
                f"not delivered on Kubernetes (no Alertmanager receiver is declared); {routed}")))
    return notices
