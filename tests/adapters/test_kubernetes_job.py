"""The kubernetes-job retrain trigger: the pure decisions, then the I/O shell against a real HTTP server on
127.0.0.1 that plays the two endpoints of the Kubernetes API the monitor may call (with its RBAC and its errors)."""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from pipelines.adapters.kubernetes_job import (
    INSTANTIATE_ANNOTATION,
    MAX_REASON_CHARS,
    REASON_ANNOTATION,
    KubernetesJobTrigger,
    api_message,
    cronjob_path,
    in_cluster_url,
    job_from_cronjob,
    job_name,
    jobs_path,
    parse_target,
    reason_annotation,
)
from pipelines.config import RunConfig
from pipelines.triggers import get_trigger

KUBERNETES_VERSION = "1.33.0"
TOKEN = "sa-token-3f9c2e"  # what the fake API accepts; it must never appear in an error message
NOW = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
CONFIG = RunConfig(model_name="churn", tracking_uri="http://127.0.0.1:1", retrain="kubernetes-job:ml/churn-train")


def cronjob(name: str = "churn-train", namespace: str = "ml") -> dict[str, Any]:
    """A CronJob as the API server returns it (defaults filled in, status, server-set metadata)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "uid": "6b1f0a6e-4c1e-4a59-9d3c-3f1f3c0d2a11",
                     "resourceVersion": "4711", "generation": 3, "creationTimestamp": "2026-01-02T03:04:05Z",
                     "labels": {"app.kubernetes.io/name": "training"}},
        "spec": {
            "schedule": "0 3 * * *",
            "concurrencyPolicy": "Forbid",
            "suspend": False,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "metadata": {"creationTimestamp": None,
                             "labels": {"app.kubernetes.io/name": "training", "shipyard.dev/model": "churn"},
                             "annotations": {"shipyard.dev/owner": "ml-team"}},
                "spec": {
                    "backoffLimit": 1,
                    "activeDeadlineSeconds": 7200,
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"creationTimestamp": None, "labels": {"app.kubernetes.io/name": "training"}},
                        "spec": {
                            "serviceAccountName": "training",
                            "automountServiceAccountToken": False,
                            "restartPolicy": "Never",
                            "containers": [{"name": "run", "image": "python:3.11-slim",
                                            "command": ["python", "-m", "pipelines", "run"],
                                            "env": [{"name": "SHIPYARD_RUN_CONFIG", "value": "/config/run.json"}],
                                            "resources": {"limits": {"cpu": "1", "memory": "2Gi"}}}],
                        },
                    },
                },
            },
        },
        "status": {"lastScheduleTime": "2026-03-04T03:00:00Z"},
    }


# ---------------------------------------------------------------------------------------------- decisions


def test_parse_target_splits_namespace_and_cronjob() -> None:
    assert parse_target("ml/churn-train") == ("ml", "churn-train")
    assert parse_target("team-a/churn.v2-train") == ("team-a", "churn.v2-train")


@pytest.mark.parametrize("target", ["", "ml", "ml/", "/churn-train", "ml/churn/train", "ML/churn-train",
                                    "ml/churn-train?watch=1", "ml/../secrets", "-ml/churn-train",
                                    "ml/" + "a" * 254])
def test_parse_target_refuses_what_is_not_a_namespace_and_a_name(target: str) -> None:
    with pytest.raises(ValueError, match="<namespace>/<cronjob>"):
        parse_target(target)


def test_job_name_is_the_cronjob_and_the_utc_second() -> None:
    assert job_name("churn-train", NOW) == "churn-train-retrain-20260304050607"
    later_elsewhere = NOW.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert job_name("churn-train", later_elsewhere) == "churn-train-retrain-20260304050607"


@pytest.mark.parametrize("cronjob", ["a" * 52 + "-train", "x" * 39 + "-" + "y" * 30, "churn.v2-train"])
def test_job_name_is_a_dns_label_of_at_most_63_characters(cronjob: str) -> None:
    name = job_name(cronjob, NOW)
    assert len(name) <= 63
    assert DNS_LABEL.fullmatch(name), name
    assert name.endswith("-retrain-20260304050607")
    assert name.startswith(cronjob[:8].replace(".", "-"))


def test_reason_annotation_is_one_bounded_line() -> None:
    assert reason_annotation("drift: age, income\n\tseverity=major\x00") == "drift: age, income severity=major"
    assert reason_annotation("") == "manual"
    assert reason_annotation(" \n ") == "manual"
    assert len(reason_annotation("x" * 5000)) == MAX_REASON_CHARS


def test_job_from_cronjob_is_what_kubectl_create_job_from_cronjob_makes() -> None:
    source = cronjob()
    job = job_from_cronjob(source, name="churn-train-retrain-20260304050607", reason="drift: age")
    template = source["spec"]["jobTemplate"]
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["spec"] == template["spec"]
    assert job["metadata"] == {
        "name": "churn-train-retrain-20260304050607",
        "namespace": "ml",
        "labels": template["metadata"]["labels"],
        "annotations": {INSTANTIATE_ANNOTATION: "manual", "shipyard.dev/owner": "ml-team",
                        REASON_ANNOTATION: "drift: age"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "churn-train",
                             "uid": source["metadata"]["uid"], "controller": True}],
    }
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_job_from_cronjob_copies_the_template() -> None:
    source = cronjob()
    before = copy.deepcopy(source)
    job = job_from_cronjob(source, name="n", reason="r")
    job["spec"]["template"]["spec"]["containers"][0]["command"].append("--changed")
    job["metadata"]["labels"]["extra"] = "x"
    assert source == before


def test_template_annotations_win_over_kubectls_but_not_over_the_reason() -> None:
    source = cronjob()
    source["spec"]["jobTemplate"]["metadata"]["annotations"] = {INSTANTIATE_ANNOTATION: "scheduled",
                                                                REASON_ANNOTATION: "stale"}
    del source["spec"]["jobTemplate"]["metadata"]["labels"]
    metadata = job_from_cronjob(source, name="n", reason="quality")["metadata"]
    assert metadata["annotations"] == {INSTANTIATE_ANNOTATION: "scheduled", REASON_ANNOTATION: "quality"}
    assert "labels" not in metadata


@pytest.mark.parametrize("missing", ["uid", "name", "jobTemplate"])
def test_job_from_cronjob_needs_a_cronjob_read_from_the_api(missing: str) -> None:
    source = cronjob()
    if missing == "jobTemplate":
        del source["spec"]["jobTemplate"]
    else:
        del source["metadata"][missing]
    with pytest.raises(ValueError, match="not a CronJob read from the API"):
        job_from_cronjob(source, name="n", reason="r")


def test_in_cluster_url_from_the_service_environment() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster_url(env) == "https://10.96.0.1:443"
    assert in_cluster_url({**env, "KUBERNETES_SERVICE_HOST": "fd00::1"}) == "https://[fd00::1]:443"
    with pytest.raises(RuntimeError, match="not in a Kubernetes pod"):
        in_cluster_url({"KUBERNETES_SERVICE_PORT": "443"})


def test_api_message_reads_a_status_or_the_start_of_the_text() -> None:
    status = {"kind": "Status", "status": "Failure", "message": 'cronjobs.batch "x" not found', "code": 404}
    assert api_message(json.dumps(status).encode()) == 'cronjobs.batch "x" not found'
    assert api_message(b"<html>\n  Bad   Gateway</html>") == "<html> Bad Gateway</html>"
    assert api_message(b"") == "(no message)"


def test_the_registry_constructs_this_trigger() -> None:
    trigger = get_trigger("kubernetes-job:ml/churn-train")
    assert isinstance(trigger, KubernetesJobTrigger)
    assert (trigger.namespace, trigger.cronjob) == ("ml", "churn-train")


# ------------------------------------------------------------------------------------ a fake API server


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A metav1.Status error body, as the API server sends it."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def forbidden(verb: str, resource: str, namespace: str, name: str = "") -> tuple[int, dict[str, str], Any]:
    """RBAC's refusal to the monitor's ServiceAccount, worded as the API server words it."""
    what = f'{resource}.batch "{name}"' if name else f"{resource}.batch"
    return 403, {}, status(403, "Forbidden", (
        f'{what} is forbidden: User "system:serviceaccount:{namespace}:churn-drift" '
        f'cannot {verb} resource "{resource}" in API group "batch" in the namespace "{namespace}"'))


@dataclass
class FakeApi:
    """The API calls the monitor's ServiceAccount may make: GET the CronJobs it is granted by name, POST Jobs.

    Like the real server, authorization (RBAC, by name) comes before existence: a CronJob the account may not
    read is 403 whether or not it exists.
    """

    cronjobs: dict[str, dict[str, Any]]
    readable: set[str]
    may_create: bool = True
    redirects: dict[str, str] = field(default_factory=dict)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)

    def respond(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        """(status, extra headers, JSON answer) of one request."""
        self.seen.append((method, path, headers.get("Authorization")))
        if path in self.redirects:
            return 307, {"Location": self.redirects[path]}, status(307, "Redirect", "moved")
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {}, status(401, "Unauthorized", "Unauthorized")
        match = re.fullmatch(r"/apis/batch/v1/namespaces/([^/]+)/(cronjobs|jobs)(?:/([^/]+))?", path)
        if not match:
            return 404, {}, status(404, "NotFound", "the server could not find the requested resource")
        namespace, resource, name = match.groups()
        if method == "GET" and resource == "cronjobs" and name:
            if f"{namespace}/{name}" not in self.readable:
                return forbidden("get", "cronjobs", namespace, name)
            if f"{namespace}/{name}" not in self.cronjobs:
                return 404, {}, status(404, "NotFound", f'cronjobs.batch "{name}" not found')
            return 200, {}, self.cronjobs[f"{namespace}/{name}"]
        if method == "POST" and resource == "jobs" and not name:
            if not self.may_create:
                return forbidden("create", "jobs", namespace)
            return self.create(namespace, headers, body)
        return 405, {}, status(405, "MethodNotAllowed", "the server does not allow this method")

    def create(self, namespace: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        """POST a Job: JSON only, of this namespace; 201 with the stored object."""
        if headers.get("Content-Type") != "application/json":
            return 415, {}, status(415, "UnsupportedMediaType", "unsupported media type")
        job = json.loads(body)
        metadata = job.get("metadata", {})
        if job.get("kind") != "Job" or metadata.get("namespace", namespace) != namespace:
            return 400, {}, status(400, "BadRequest", "not a Job of this namespace")
        stored = {**job, "metadata": {**metadata, "namespace": namespace, "uid": f"job-{len(self.created)}"},
                  "status": {}}
        self.created.append(stored)
        return 201, {}, stored


def serve(api: FakeApi, tls: ssl.SSLContext | None = None) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """`api` on a free port of 127.0.0.1, in a thread."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            code, headers, document = api.respond(self.command, self.path, self.headers, body)
            data = json.dumps(document).encode()
            self.send_response(code)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def api() -> FakeApi:
    """The churn model's namespace: its training CronJob exists and is the one the monitor may read."""
    return FakeApi(cronjobs={"ml/churn-train": cronjob()}, readable={"ml/churn-train", "ml/gone-train"})


@pytest.fixture
def api_url(api: FakeApi) -> Iterator[str]:
    """The fake API over plain HTTP."""
    server, thread = serve(api)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    """A service-account directory as the kubelet mounts it (the token file ends with a newline)."""
    (tmp_path / "token").write_text(TOKEN + "\n")
    return tmp_path


# --------------------------------------------------------------------------------------------- I/O shell


def test_start_creates_the_job_from_the_cronjob(api: FakeApi, api_url: str, credentials: Path) -> None:
    trigger = KubernetesJobTrigger("ml/churn-train", api_url=api_url, credentials_dir=credentials)
    started = trigger.start("drift: age (major)", CONFIG)

    assert [(m, p) for m, p, _ in api.seen] == [("GET", cronjob_path("ml", "churn-train")), ("POST", jobs_path("ml"))]
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in api.seen)
    [job] = api.created
    name = job["metadata"]["name"]
    assert started == f"kubernetes-job:ml/{name}"
    assert re.fullmatch(r"churn-train-retrain-\d{14}", name)
    del job["metadata"]["uid"], job["status"]  # set by the server
    assert job == job_from_cronjob(cronjob(), name=name, reason="drift: age (major)")


def test_a_forbidden_cronjob_is_a_clear_error(api: FakeApi, api_url: str, credentials: Path) -> None:
    api.cronjobs["ml/fraud-train"] = cronjob("fraud-train")
    trigger = KubernetesJobTrigger("ml/fraud-train", api_url=api_url, credentials_dir=credentials)
    with pytest.raises(RuntimeError) as caught:
        trigger.start("drift", CONFIG)
    message = str(caught.value)
    assert message.startswith("kubernetes-job ml/fraud-train: cannot read the CronJob: HTTP 403 Forbidden: ")
    assert 'cannot get resource "cronjobs" in API group "batch" in the namespace "ml"' in message
    assert TOKEN not in message
    assert api.created == []


def test_a_missing_cronjob_is_a_clear_error(api: FakeApi, api_url: str, credentials: Path) -> None:
    trigger = KubernetesJobTrigger("ml/gone-train", api_url=api_url, credentials_dir=credentials)
    with pytest.raises(RuntimeError, match=r'^kubernetes-job ml/gone-train: cannot read the CronJob: HTTP 404 '
                                           r'Not Found: cronjobs.batch "gone-train" not found$'):
        trigger.start("drift", CONFIG)
    assert api.created == []


def test_a_refused_create_is_a_clear_error(api: FakeApi, api_url: str, credentials: Path) -> None:
    api.may_create = False
    trigger = KubernetesJobTrigger("ml/churn-train", api_url=api_url, credentials_dir=credentials)
    with pytest.raises(RuntimeError, match=r'^kubernetes-job ml/churn-train: cannot create a Job: HTTP 403 '
                                           r'Forbidden: jobs.batch is forbidden: .*cannot create resource "jobs"'):
        trigger.start("drift", CONFIG)
    assert [m for m, _, _ in api.seen] == ["GET", "POST"]


def test_a_refused_token_is_reported_without_the_token(api: FakeApi, api_url: str, credentials: Path) -> None:
    (credentials / "token").write_text("expired-token")
    trigger = KubernetesJobTrigger("ml/churn-train", api_url=api_url, credentials_dir=credentials)
    with pytest.raises(RuntimeError, match=r"HTTP 401 Unauthorized: Unauthorized$") as caught:
        trigger.start("drift", CONFIG)
    assert "expired-token" not in str(caught.value)


def test_redirects_are_not_followed_with_the_token(api: FakeApi, api_url: str, credentials: Path) -> None:
    api.redirects[cronjob_path("ml", "churn-train")] = "/elsewhere"
    trigger = KubernetesJobTrigger("ml/churn-train", api_url=api_url, credentials_dir=credentials)
    with pytest.raises(RuntimeError, match="cannot read the CronJob: HTTP 307"):
        trigger.start("drift", CONFIG)
    assert [p for _, p, _ in api.seen] == [cronjob_path("ml", "churn-train")]


def test_no_token_mounted_is_a_clear_error_before_any_call(api: FakeApi, api_url: str, tmp_path: Path) -> None:
    trigger = KubernetesJobTrigger("ml/churn-train", api_url=api_url, credentials_dir=tmp_path)
    with pytest.raises(RuntimeError, match=r"no service-account token at .*must mount its ServiceAccount token"):
        trigger.start("drift", CONFIG)
    assert api.seen == []


def test_an_unreachable_api_server_is_a_clear_error(credentials: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    trigger = KubernetesJobTrigger("ml/churn-train", api_url=f"http://127.0.0.1:{port}", credentials_dir=credentials)
    with pytest.raises(RuntimeError, match=rf"the API server at http://127.0.0.1:{port} is unreachable"):
        trigger.start("drift", CONFIG)


# ------------------------------------------------------------------------------------------------- TLS


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate, key) PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_is_verified_against_the_cluster_ca(api: FakeApi, credentials: Path, tmp_path: Path) -> None:
    server_cert, server_key = self_signed(tmp_path, "apiserver")
    other_ca, _ = self_signed(tmp_path, "other")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(server_cert, server_key)
    server, thread = serve(api, tls)
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        (credentials / "ca.crt").write_bytes(other_ca.read_bytes())
        with pytest.raises(RuntimeError, match=r"unreachable: .*CERTIFICATE_VERIFY_FAILED"):
            KubernetesJobTrigger("ml/churn-train", api_url=url, credentials_dir=credentials).start("drift", CONFIG)
        assert api.seen == []

        (credentials / "ca.crt").write_bytes(server_cert.read_bytes())
        started = KubernetesJobTrigger("ml/churn-train", api_url=url, credentials_dir=credentials).start(
            "drift", CONFIG)
        assert started == f"kubernetes-job:ml/{api.created[0]['metadata']['name']}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
