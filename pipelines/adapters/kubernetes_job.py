"""Kubernetes retraining: start a Job from the model's training CronJob, as `kubectl create job --from=cronjob/<name>`.

`KubernetesJobTrigger` (`kubernetes-job:<namespace>/<cronjob>` in a run configuration's `retrain`) runs in the
monitor's pod. Its ServiceAccount may get that one CronJob and create Jobs in the namespace, nothing more
(infra/targets/kubernetes/rbac.py), so it does exactly two calls: GET the CronJob, POST a Job built from its
`jobTemplate`. The retraining reason is recorded in the Job's `shipyard.dev/retrain-reason` annotation.

No Kubernetes client library: the standard library's `urllib.request` against the in-cluster API
(`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`), authenticated with the pod's mounted
service-account token (re-read on every call: the kubelet rotates it) and verified against the cluster CA.
The decisions (`parse_target`, `job_name`, `job_from_cronjob`, ...) are pure functions; the trigger is the I/O shell.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import ssl
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.config import RunConfig

#: Where the kubelet mounts a pod's service-account credentials (`token`, `ca.crt`, `namespace`).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: The annotation kubectl puts on a Job started by hand from a CronJob.
INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"
#: The annotation recording why the monitor started the Job.
REASON_ANNOTATION = "shipyard.dev/retrain-reason"
#: The longest reason recorded (the SageMaker trigger keeps as much).
MAX_REASON_CHARS = 1024
#: A Job's name ends up in its pods' `job-name` label, whose values are at most 63 characters.
MAX_JOB_NAME = 63
#: How much of an API error body that is not a JSON Status goes into an error message.
MAX_ERROR_TEXT = 300
JOB_NAME_INFIX = "-retrain-"
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


# ---------------------------------------------------------------------------------------------- decisions


def parse_target(target: str) -> tuple[str, str]:
    """'<namespace>/<cronjob>' -> (namespace, cronjob); ValueError unless both are valid Kubernetes names."""
    namespace, _, cronjob = target.partition("/")
    if not _DNS_LABEL.fullmatch(namespace) or not _DNS_SUBDOMAIN.fullmatch(cronjob):
        raise ValueError(f"kubernetes-job target {target!r}: expected '<namespace>/<cronjob>' with a namespace "
                         "of lowercase letters, digits and '-' and a CronJob name of lowercase letters, digits, "
                         "'-' and '.'")
    return namespace, cronjob


def job_name(cronjob: str, now: dt.datetime) -> str:
    """`<cronjob>-retrain-<UTC yyyymmddhhmmss>`: a DNS label of at most 63 characters (the CronJob part shortened)."""
    suffix = JOB_NAME_INFIX + now.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)
    base = re.sub(r"[^a-z0-9-]+", "-", cronjob.lower())[:MAX_JOB_NAME - len(suffix)].strip("-")
    return base + suffix if base else suffix.lstrip("-")


def reason_annotation(reason: str) -> str:
    """`reason` as one line of at most 1,024 characters: control characters out, whitespace collapsed."""
    printable = "".join(" " if unicodedata.category(c).startswith("C") else c for c in reason)
    return " ".join(printable.split())[:MAX_REASON_CHARS] or "manual"


def job_from_cronjob(cronjob: Mapping[str, Any], *, name: str, reason: str) -> dict[str, Any]:
    """The Job `kubectl create job <name> --from=cronjob/<cronjob>` creates, plus the reason annotation.

    As kubectl does: the template's spec and labels; the template's annotations over
    `cronjob.kubernetes.io/instantiate: manual`; the CronJob as controlling owner (so the Job shows up under
    it and is deleted with it). Like kubectl, no `blockOwnerDeletion`: setting it requires `update` on
    `cronjobs/finalizers`, which the monitor is not granted. `cronjob` is the CronJob as the API returns it.
    """
    metadata = cronjob.get("metadata") or {}
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    if not metadata.get("name") or not metadata.get("uid") or not template.get("spec"):
        raise ValueError("not a CronJob read from the API: metadata.name, metadata.uid and "
                         "spec.jobTemplate.spec are required")
    template_meta = template.get("metadata") or {}
    labels = template_meta.get("labels") or {}
    job_metadata: dict[str, Any] = {
        "name": name,
        "annotations": {INSTANTIATE_ANNOTATION: "manual", **(template_meta.get("annotations") or {}),
                        REASON_ANNOTATION: reason_annotation(reason)},
        **({"labels": dict(labels)} if labels else {}),
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": metadata["name"],
                             "uid": metadata["uid"], "controller": True}],
    }
    if metadata.get("namespace"):
        job_metadata["namespace"] = metadata["namespace"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_metadata,
            "spec": copy.deepcopy(template["spec"])}


def cronjob_path(namespace: str, cronjob: str) -> str:
    """The API path of a CronJob."""
    return f"/apis/batch/v1/namespaces/{namespace}/cronjobs/{cronjob}"


def jobs_path(namespace: str) -> str:
    """The API path of a namespace's Jobs (POST creates one)."""
    return f"/apis/batch/v1/namespaces/{namespace}/jobs"


def in_cluster_url(env: Mapping[str, str]) -> str:
    """The API server's URL as a pod sees it: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise RuntimeError("not in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def api_message(body: bytes) -> str:
    """What went wrong, from an API error body: a Status object's `message`, else the start of the text."""
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("message"):
        return str(document["message"])
    return " ".join(text.split())[:MAX_ERROR_TEXT] or "(no message)"


# ------------------------------------------------------------------------------------------------ I/O shell


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would resend the bearer token to wherever the Location points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """No new request: the 3xx surfaces as an HTTPError."""
        return None


class KubernetesJobTrigger:
    """Starts a Job from the model's training CronJob (`kubernetes-job:<namespace>/<cronjob>`).

    `api_url` (default: the in-cluster URL from the environment) and `credentials_dir` (default: the mounted
    service-account directory holding `token` and `ca.crt`) exist for tests and out-of-cluster runs.
    """

    def __init__(self, target: str = "", *, api_url: str | None = None, credentials_dir: str | Path | None = None,
                 timeout: float = 30.0) -> None:
        self.namespace, self.cronjob = parse_target(target)
        self.target = target
        self.api_url = api_url
        self.credentials_dir = Path(credentials_dir) if credentials_dir else SERVICE_ACCOUNT_DIR
        self.timeout = timeout

    def start(self, reason: str, config: RunConfig) -> str:
        """Create the Job; returns `kubernetes-job:<namespace>/<job name>`. RuntimeError when the API refuses."""
        cronjob = self._call("GET", cronjob_path(self.namespace, self.cronjob), "read the CronJob")
        job = job_from_cronjob(cronjob, name=job_name(self.cronjob, dt.datetime.now(dt.UTC)), reason=reason)
        created = self._call("POST", jobs_path(self.namespace), "create a Job", job)
        return f"kubernetes-job:{self.namespace}/{created['metadata']['name']}"

    def _credential(self, name: str) -> Path:
        path = self.credentials_dir / name
        if not path.is_file():
            raise RuntimeError(f"kubernetes-job {self.target}: no service-account {name} at {path} "
                               "(the monitor's pod must mount its ServiceAccount token)")
        return path

    def _opener(self, url: str) -> urllib.request.OpenerDirector:
        """Direct (no proxy: the API server is in the cluster), no redirects, TLS verified against the cluster CA."""
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({}), _NoRedirect()]
        if url.startswith("https:"):
            context = ssl.create_default_context(cafile=str(self._credential("ca.crt")))
            handlers.append(urllib.request.HTTPSHandler(context=context))
        return urllib.request.build_opener(*handlers)

    def _call(self, method: str, path: str, action: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One API call; its JSON answer, or a RuntimeError naming the target, the status and the API's message."""
        base = (self.api_url or in_cluster_url(os.environ)).rstrip("/")
        token = self._credential("token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
        where = f"kubernetes-job {self.namespace}/{self.cronjob}: cannot {action}"
        try:
            with self._opener(base).open(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{where}: HTTP {exc.code} {exc.reason}: {api_message(exc.read())}") from None
        except OSError as exc:  # URLError (refused, TLS verification), timeouts
            reason = getattr(exc, "reason", None) or exc
            raise RuntimeError(f"{where}: the API server at {base} is unreachable: {reason}") from None
