"""The tracking server's command line and environment, as the Deployment sets them, run for real on loopback.

Checks what the mock runtime cannot: that MLflow accepts the arguments, starts lean behind the start-up shell that
reads its backend-store URI from a (Secret) file, answers `/health`, and accepts API calls addressed to its
in-cluster Service name while refusing an unknown Host header.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from loopback import free_port

from infra.spec import PlatformSpec
from infra.targets.kubernetes import layout
from infra.targets.kubernetes.registry import BACKEND_STORE_VAR, allowed_hosts, mlflow_command
from infra.targets.kubernetes.workload import env_from_files

pytestmark = pytest.mark.slow
NAMESPACE = "ml"
DOMAIN = "cluster.local"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    spec = PlatformSpec.model_validate({"target": "kubernetes", "models": [{"name": "churn"}]})
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    command = mlflow_command(spec)
    command[command.index("--host") + 1] = "127.0.0.1"  # loopback only here; the pod binds 0.0.0.0
    command[command.index("--port") + 1] = str(port)
    command[command.index("--artifacts-destination") + 1] = str(root / "artifacts")
    uri_file = root / "secrets" / "uri"
    uri_file.parent.mkdir()
    uri_file.write_text(f"sqlite:///{root / 'mlflow.db'}\n")  # as a Secret file: with a trailing newline
    env = {k: v for k, v in os.environ.items() if k != BACKEND_STORE_VAR}
    env.update({"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "MLFLOW_SERVER_ALLOWED_HOSTS": allowed_hosts(NAMESPACE, DOMAIN)})
    process = subprocess.Popen(env_from_files(command, {BACKEND_STORE_VAR: str(uri_file)}), env=env, cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited: {process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("mlflow server did not become healthy")
        yield base, root
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_api_calls_to_the_service_name_are_accepted(server) -> None:
    base, _ = server
    host = f"{layout.service_host(layout.MLFLOW, NAMESPACE, DOMAIN)}:{layout.MLFLOW_PORT}"
    response = httpx.post(f"{base}/api/2.0/mlflow/experiments/search", json={"max_results": 1},
                          headers={"Host": host}, timeout=10)
    assert response.status_code == 200, response.text


def test_the_backend_store_is_the_database_named_in_the_secret_file(server) -> None:
    _, root = server
    assert (root / "mlflow.db").is_file()  # MLflow created its schema where the file's URI says

def test_an_unknown_host_header_is_refused(server) -> None:
    base, _ = server
    response = httpx.post(f"{base}/api/2.0/mlflow/experiments/search", json={"max_results": 1},
                          headers={"Host": "attacker.example.com"}, timeout=10)
    assert response.status_code in (400, 403), response.text
