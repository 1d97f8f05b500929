"""Fixtures of the GCP target's tests: a project copy with extra stacks, the GCS emulator, a fake Google API."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from gcp_helpers import BUCKET, LONG_MODEL, LONG_NAME, PINNED_IMAGE
from loopback import free_port
from stack_copies import extra_stack_fixtures

#: The other branches: an existing network, GPU training and serving, webhooks from a Pulumi secret and from a
#: Secret Manager reference, an external database by reference, a public model without auth.
EDGE_STACK = """\
config:
  shipyard:target: gcp
  shipyard:environment: staging
  shipyard:region: us-central1
  shipyard:gcp: {project: acme-edge-1, enable_apis: false}
  shipyard:networking:
    existing_network: projects/acme-host-1/global/networks/shared
  shipyard:registry:
    database:
      external_url: {ref: "projects/acme-edge-1/secrets/mlflow-db-url"}
  shipyard:training: {size: gpu, gpu_count: 1, schedule: "30 2 * * 1-5"}
  shipyard:models:
    - name: churn
      serving: {size: gpu, public: true, auth: none}
      monitoring:
        min_quality: {roc_auc: 0.8}
        alerts:
          - {kind: webhook, url: {secure: v1:aHR0cHM6Ly9ob29rcy5leGFtcGxlLmNvbS9hYmM=}}
          - {kind: webhook, url: {ref: "projects/acme-edge-1/secrets/hook"}}
    - name: price
      pipeline:
        task: regression
        target_column: target
        estimator: ridge
        gates: {primary_metric: r2, minimum: {r2: 0.5}}
      serving: {min_replicas: 0, max_replicas: 2, auth: api_key}
      monitoring: {min_quality: {rmse: 12.5}, retrain_on_drift: false}
"""

LONG_STACK = f"""\
config:
  shipyard:target: gcp
  shipyard:name: {LONG_NAME}
  shipyard:environment: staging
  shipyard:region: northamerica-northeast1
  shipyard:gcp: {{project: a-thirty-character-project-id0}}
  shipyard:models:
    - {{name: churn, remove: true}}
    - name: {LONG_MODEL}
"""

#: A prod stack running a pinned image.
PINNED_STACK = """\
config:
  shipyard:target: gcp
  shipyard:environment: prod
  shipyard:region: europe-west4
  shipyard:gcp: {project: acme-ml-prod}
  shipyard:runtime_image: """ + PINNED_IMAGE + "\n"

EXTRA_STACKS = {"gcp-edge": EDGE_STACK, "gcp-long": LONG_STACK, "gcp-pinned": PINNED_STACK}


project, captured = extra_stack_fixtures(EXTRA_STACKS)



def _set_env(env: Mapping[str, str]) -> dict[str, str | None]:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    return saved


def _restore(saved: Mapping[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator on loopback, in memory, with the test bucket; every GCS client is pointed at it.

    gcsfs reads GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT when imported: it must be off before, or each call spends a
    minute in a gRPC probe the emulator cannot answer.
    """
    from gcp_storage_emulator.server import create_server

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    saved = _set_env({"STORAGE_EMULATOR_HOST": url, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
                      "GOOGLE_CLOUD_PROJECT": "test-project", "FSSPEC_GS_TOKEN": "anon"})
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    try:
        yield url
    finally:
        server.stop()
        _restore(saved)


class FakeGoogle:
    """Records the requests a fake Google REST API received and answers them."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """CreateTimeSeries answers {}; CreateExecution answers an execution; anything else 404."""
        self.requests.append(("POST", path, body))
        if path.startswith("/v3/projects/") and path.endswith("/timeSeries"):
            if not 0 < len(body.get("timeSeries", [])) <= 200:
                return 400, {"error": {"message": "between 1 and 200 time series per call"}}
            return 200, {}
        if path.startswith("/v1/projects/") and path.endswith("/executions"):
            return 200, {"name": path.removeprefix("/v1/").removesuffix("s") + "s/e-1", "state": "ACTIVE"}
        return 404, {"error": {"message": f"no such method {path}"}}


@pytest.fixture()
def fake_google(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FakeGoogle]]:
    """A fake Cloud Monitoring / Workflows REST API on loopback; the adapters' endpoints point at it and their
    sessions carry no Google credentials (there are none here: what is tested is what goes over the wire)."""
    import requests

    from pipelines.adapters import gcp

    monkeypatch.setattr(gcp, "authorized_session", requests.Session)
    fake = FakeGoogle()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            status, answer = fake.answer(self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    saved = _set_env({"SHIPYARD_GCP_MONITORING_ENDPOINT": url, "SHIPYARD_GCP_WORKFLOWS_ENDPOINT": url})
    try:
        yield url, fake
    finally:
        server.shutdown()
        server.server_close()
        _restore(saved)
