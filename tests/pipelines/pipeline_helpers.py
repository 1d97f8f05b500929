"""Helpers shared by the pipelines' tests (imported by name; the fixtures live in conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from loopback import free_port

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DATASET = "demo://classification?rows=2000&seed=7"
#: Debian's PostgreSQL binaries (the newest installed major version; 15 on this image).
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path(
    "/usr/lib/postgresql/15/bin"))


def config_document(tmp: Path, tracking_uri: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A run configuration like `infra/runconfig.py` writes, on stores under `tmp`.

    The latency limit is generous: timings never decide a test (`test_gates` checks the latency logic).
    """
    doc: dict[str, Any] = {
        "version": 1, "platform": "shipyard", "environment": "dev", "model_name": "churn", "alias": "champion",
        "experiment": "shipyard/churn", "tracking_uri": tracking_uri or f"sqlite:///{tmp}/mlflow.db",
        "dataset_uri": DATASET, "target_column": "label", "task": "classification",
        "estimator": "logistic_regression", "params": {"C": 1.0, "max_iter": 500}, "search": None,
        "test_size": 0.2, "seed": 42,
        "gates": {"primary_metric": "roc_auc", "minimum": {"roc_auc": 0.75, "accuracy": 0.7}, "maximum": {},
                  "challenger_margin": 0.01, "max_latency_ms": 5000.0},
        "monitoring": {"window_hours": 24, "covariate_threshold": 0.2, "prior_threshold": 0.1,
                       "significance": 0.01, "min_quality": {}, "retrain_on_drift": True},
        "inference_log_uri": str(tmp / "inference"), "reports_uri": str(tmp / "reports"),
        "sinks": [f"prometheus:{tmp}/metrics/{{model}}.prom"], "retrain": "inline",
    }
    doc.update(overrides)
    return doc


def stop(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop a server started in its own session: SIGTERM, then SIGKILL after `grace` seconds (test state only)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def start_mlflow_server(backend_uri: str, root: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """A lean `mlflow server` (one worker, no job runner) on loopback; returns its URL once /health answers."""
    port = free_port()
    artifacts = root / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log = (root / "mlflow-server.log").open("wb")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts)],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return url, process
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop(process)
    tail = (root / "mlflow-server.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"mlflow server did not become healthy (exit {process.returncode}):\n{tail}")
