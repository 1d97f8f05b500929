"""What the GCP target refuses (`check`) and what it does not honour (`ignored`): pure, no SDK."""

from __future__ import annotations

import calendar
import re

from infra.cron import Cron, normalize
from infra.problems import Notice, Problem
from infra.spec import PlatformSpec
from infra.targets.baseline import changed
from infra.targets.gcp.sizes import GPU_ACCELERATOR, GPU_REGIONS, MAX_GPUS
from infra.targets.schedules import schedule_problems

#: A region (`us-central1`, `europe-west4`, `northamerica-northeast1`); a zone adds '-<letter>'.
_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")
_ZONE = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]$")
#: A project id: 6-30 characters, lowercase letters, digits and '-', starting with a letter, not ending in '-'.
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
#: An existing network: its name, or its path `projects/<project>/global/networks/<name>`.
_NETWORK_NAME = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
_NETWORK = re.compile(rf"^(projects/[a-z][a-z0-9-]{{4,28}}[a-z0-9]/global/networks/)?{_NETWORK_NAME}$")
#: A Secret Manager secret holding the database URL: `projects/<project>/secrets/<id>`.
_SECRET = re.compile(r"^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}$")
_FIELD_HIGHS = (59, 23, 31, 12)


def region_problems(region: str | None) -> list[Problem]:
    """A region of GCP's shape; a zone, or another cloud's region, is named as the mistake it is."""
    if region is None or _REGION.match(region):
        return []
    zone = _ZONE.match(region)
    if zone:
        return [Problem.at("region", f"{region!r} is a zone; the region is {zone.group(1)!r}")]
    return [Problem.at("region", f"{region!r} is not a GCP region (e.g. 'us-central1', 'europe-west4')")]


def _field(text: str, high: int) -> str:
    """A numeric field as unix-cron writes it: a step from a number (`5/15`) becomes a range (`5-H/15`)."""
    return ",".join(f"{part.split('/')[0]}-{high}/{part.split('/')[1]}"
                    if "/" in part and not part.startswith("*") and "-" not in part else part
                    for part in text.split(","))


def scheduler_cron(expression: str) -> str:
    """A five-field cron expression as Cloud Scheduler's unix-cron accepts it: the numeric form
    (`infra.cron.normalize`), with steps from a number (`5/15`) written as ranges (`5-59/15`).

    ValueError when the schedule can never fire (February 30th): Cloud Scheduler refuses it.
    """
    cron = Cron.parse(expression)
    fields = normalize(expression).split()
    if cron.day_restricted and not cron.weekday_restricted and not any(
            day <= calendar.monthrange(2024, month)[1] for month in cron.months for day in cron.days):
        raise ValueError(f"{expression!r} never fires: no month has those days; Cloud Scheduler refuses it")
    return " ".join([*(_field(text, high) for text, high in zip(fields[:4], _FIELD_HIGHS, strict=True)), fields[4]])



def _gpu_problems(spec: PlatformSpec) -> list[Problem]:
    """GPUs on Cloud Run: one L4 per task or instance, only in some regions."""
    wants = [("training.size", spec.training.size)]
    wants += [(f"models[{i}].serving.size", m.serving.size) for i, m in enumerate(spec.models)]
    problems = []
    for key, size_class in wants:
        if size_class == "gpu" and spec.region not in GPU_REGIONS:
            problems.append(Problem.at(key, (
                f"'gpu' needs a region where Cloud Run has {GPU_ACCELERATOR} GPUs ({', '.join(sorted(GPU_REGIONS))}); "
                f"{spec.region!r} has none")))
    if spec.training.gpu_count > MAX_GPUS:
        problems.append(Problem.at("training.gpu_count", (
            f"Cloud Run jobs have at most {MAX_GPUS} GPU per task; got {spec.training.gpu_count}")))
    return problems


def _name_problems(spec: PlatformSpec) -> list[Problem]:
    """Names GCP refuses at apply time whatever their length: bucket names may not hold 'google' nor start
    with 'goog' (the platform name starts every bucket name)."""
    if spec.name.startswith("goog") or "google" in spec.name or "g00gle" in spec.name:
        return [Problem.at("name", f"{spec.name!r} cannot start a GCS bucket name: bucket names may not "
                                   "begin with 'goog' or contain 'google'")]
    return []


def check(spec: PlatformSpec) -> list[Problem]:
    """Everything in `spec` the GCP target refuses, located by key path."""
    problems = (region_problems(spec.region) + schedule_problems(spec, scheduler_cron) + _gpu_problems(spec)
                + _name_problems(spec))
    project = spec.gcp_settings.project
    if project is None:
        problems.append(Problem.at("gcp.project", "is required for target 'gcp' (the project id, e.g. 'acme-ml-dev')"))
    elif not _PROJECT.match(project):
        problems.append(Problem.at("gcp.project", (
            f"{project!r} is not a project id: 6-30 lowercase letters, digits and '-', starting with a letter")))
    network = spec.networking.existing_network
    if network is not None and not _NETWORK.match(network):
        problems.append(Problem.at("networking.existing_network", (
            f"{network!r} is not a VPC network: give its name or 'projects/<project>/global/networks/<name>'")))
    external = spec.registry.database.external_url
    if external is not None and external.ref is not None and not _SECRET.match(external.ref):
        problems.append(Problem.at("registry.database.external_url.ref", (
            f"{external.ref!r} must be a Secret Manager secret holding the URL ('projects/<project>/secrets/<id>')")))
    for i, model in enumerate(spec.models):
        for j, alert in enumerate(model.monitoring.alerts):
            if alert.url is not None and alert.url.ref is not None and not _SECRET.match(alert.url.ref):
                problems.append(Problem.at(f"models[{i}].monitoring.alerts[{j}].url.ref", (
                    f"{alert.url.ref!r} must be a Secret Manager secret ('projects/<project>/secrets/<id>')")))
    return problems


#: Settings the GCP target does not honour, and what happens instead (reported only when changed).
_PLATFORM_NOTICES = {
    "training.spot": "Cloud Run jobs have no spot capacity: every task runs on regular capacity",
    "training.min_nodes": "Cloud Run jobs keep nothing warm: capacity exists only while a step runs",
    "training.max_nodes": "each model's steps run one task at a time, chained by its Workflow",
    "registry.artifacts.s3_endpoint": "the artifacts live in the stack's GCS bucket (Kubernetes target only)",
    "registry.artifacts.bucket": "the artifacts live in the stack's GCS bucket (Kubernetes target only)",
    "registry.artifacts.s3_credentials": "workloads reach GCS with their service accounts (Kubernetes target only)",
    "networking.allowed_cidrs": ("Cloud Run ingress cannot be limited to address ranges without a load balancer "
                                 "and Cloud Armor; public endpoints are reachable from anywhere, behind their auth"),
}
_MODEL_NOTICES = {
    "serving.target_cpu_utilization": ("Cloud Run scales on its own concurrency and CPU signals; the instance "
                                       "bounds are honoured, the CPU target is not"),
    "serving.rollout.bake_minutes": "Cloud Run does not watch a new revision for a while before it takes traffic",
}
_ROLLOUT_NOTICE = ("{strategy!r} is not done on GCP: Cloud Run moves all traffic to a new revision once its startup "
                   "probe passes (a revision that fails to start never takes traffic); shift a canary by hand with "
                   "`gcloud run services update-traffic --to-revisions` (docs/gcp.md)")


def ignored(spec: PlatformSpec) -> list[Notice]:
    """Every setting of `spec` the GCP target does not honour, with what happens instead."""
    notices = [Notice(path, _PLATFORM_NOTICES[path]) for path in changed(spec, *_PLATFORM_NOTICES)]
    for i, model in enumerate(spec.models):
        paths = changed(spec, *(f"models[{i}].{key}" for key in _MODEL_NOTICES))
        notices += [Notice(path, _MODEL_NOTICES[path.split(".", 1)[1]]) for path in paths]
        if model.serving.rollout.strategy != "rolling":
            notices.append(Notice(f"models[{i}].serving.rollout.strategy",
                                  _ROLLOUT_NOTICE.format(strategy=model.serving.rollout.strategy)))
        if model.serving.auth == "api_key":
            notices.append(Notice(f"models[{i}].serving.auth", (
                "'api_key' is served with IAM auth on GCP: Cloud Run has no API keys of its own; callers send a "
                "Google ID token (grant them roles/run.invoker)")))
    return notices
