"""The Azure runtime against Azurite on loopback (data, inference logs, reports, MLflow on wasbs://, the wheel
upload and bootstrap), and Azure Monitor / Container Apps calls against a fake HTTP server asserting shapes."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from infra.packaging import build_wheel
from infra.targets.azure.upload import BlobProvider, sha256_text
from pipelines.adapters import azure
from pipelines.sinks import Metric, get_sink
from pipelines.triggers import get_trigger

CONTAINERS = ("data", "inference", "reports", "mlflow", "packages")


@pytest.fixture(scope="module")
def blobs(azurite: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite)
    for name in CONTAINERS:
        if not service.get_container_client(name).exists():
            service.create_container(name)
    return service


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- blob data


@pytest.mark.parametrize("scheme", ["az://data", "abfs://data"])
def test_datasets_from_blob_csv_and_parquet(blobs, scheme: str) -> None:
    from pipelines.data import read_dataset

    frame = pd.DataFrame({"x1": [0.5, 1.5, 2.5], "color": ["red", "blue", "red"], "label": [0, 1, 0]})
    data = blobs.get_container_client("data")
    data.upload_blob("train.csv", frame.to_csv(index=False).encode(), overwrite=True)
    data.upload_blob("train.parquet", _parquet(frame), overwrite=True)
    pd.testing.assert_frame_equal(read_dataset(f"{scheme}/train.csv").frame, frame)
    pd.testing.assert_frame_equal(read_dataset(f"{scheme}/train.parquet").frame, frame)


def test_inference_logs_and_reports_on_blob(blobs) -> None:
    from pipelines.monitor import read_window
    from pipelines.storage import read_bytes, write_bytes

    now = pd.Timestamp.now(tz="UTC")
    old = pd.DataFrame({"x1": [9.0], "prediction": [1], "_timestamp": [now - pd.Timedelta(days=3)],
                        "_model_version": ["1"]})
    new = pd.DataFrame({"x1": [0.1, 0.2], "prediction": [0, 1], "_timestamp": [now, now], "_model_version": ["2"] * 2})
    logs = blobs.get_container_client("inference")
    logs.upload_blob("churn/2026-01-01/a.parquet", _parquet(old), overwrite=True)
    logs.upload_blob("churn/2026-01-02/b.parquet", _parquet(new), overwrite=True)
    everything, files = read_window("az://inference/churn", window_hours=24 * 7, now=now.to_pydatetime())
    assert (len(everything), files) == (3, 2)
    recent, _ = read_window("az://inference/churn", window_hours=1, now=now.to_pydatetime())
    assert recent["x1"].tolist() == [0.1, 0.2]
    write_bytes("az://reports/churn/report.json", b'{"drift": false}')
    assert read_bytes("az://reports/churn/report.json") == b'{"drift": false}'
    assert blobs.get_blob_client("reports", "churn/report.json").download_blob().readall() == b'{"drift": false}'


def test_mlflow_logs_and_loads_a_model_on_wasbs(blobs, tmp_path: Path) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("azure-artifacts",
                                          artifact_location=azure.artifact_uri(azure_account(), "mlflow"))
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(model, name="model", input_example=x[:2], pip_requirements=["scikit-learn"],
                                 serialization_format="cloudpickle")
    names = [b.name for b in blobs.get_container_client("mlflow").list_blobs()]
    assert any(n.endswith("/artifacts/MLmodel") for n in names), names
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.predict(x[:5]).tolist() == model.predict(x[:5]).tolist()


def azure_account() -> str:
    return os.environ["AZURE_STORAGE_ACCOUNT_NAME"]


def test_upload_provider_and_bootstrap_run_the_wheel(blobs, project_dir: Path, tmp_path: Path) -> None:
    """The deploy-time upload puts the wheel where the program says; the container bootstrap installs it from
    there and runs `python -m pipelines` (here `--help`), with nothing but the image's dependencies."""
    package = build_wheel(project_dir)
    key = f"{package.sha256}/{package.filename}"
    provider = BlobProvider()
    props = {"account": azure_account(), "container": "packages", "blob": key, "sha256": package.sha256,
             "path": str(package.path), "text": None, "contentType": "application/zip", "metadata": {}}
    created = provider.create(props)
    assert created.id == f"{azure_account()}/packages/{key}"
    stored = blobs.get_blob_client("packages", key).download_blob().readall()
    assert hashlib.sha256(stored).hexdigest() == package.sha256
    assert provider.diff(created.id, props, {**props}).changes is False
    assert provider.diff(created.id, props, {**props, "sha256": "0" * 64}).replaces == ["sha256"]
    with pytest.raises(ValueError, match="content changed"):
        provider.create({**props, "blob": "other.whl", "sha256": sha256_text("not the wheel")})

    env = {**os.environ, "SHIPYARD_WHEEL_DIR": str(tmp_path / "wheel"), "PATH": f"{Path(sys.executable).parent}:"
           + os.environ.get("PATH", "")}
    command = azure.bootstrap_command(f"az://packages/{key}", "--help")
    command[0] = sys.executable
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "validate-data" in result.stdout and (tmp_path / "wheel" / "pipelines" / "__main__.py").exists()


# ------------------------------------------------------------------------------------------- fake Azure


class Recorder(BaseHTTPRequestHandler):
    """Records every request; answers job starts like ARM does."""

    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
        Recorder.requests.append({"path": self.path, "auth": self.headers["Authorization"],
                                  "type": self.headers["Content-Type"], "body": body})
        answer = json.dumps({"id": self.path.split("?")[0].removesuffix("/start") + "/executions/train-x1",
                             "name": "train-x1"}).encode() if "/start" in self.path else b""
        self.send_response(202 if "/start" in self.path else 200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture()
def fake_azure() -> Iterator[str]:
    Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


class FakeCredential:
    """Hands out a token naming the scope it was asked for."""

    def get_token(self, scope: str) -> Any:
        return SimpleNamespace(token=f"token-for-{scope}")


INSIGHTS = "/subscriptions/s/resourceGroups/rg/providers/microsoft.insights/components/shipyard-dev-insights"
JOB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/jobs/shipyard-dev-train-churn"


def test_monitor_sink_posts_custom_metrics(fake_azure: str) -> None:
    sink = azure.AzureMonitorSink(INSIGHTS, namespace="shipyard/shipyard-dev", credential=FakeCredential(),
                                  endpoint=fake_azure)
    sink.emit([Metric("shipyard_retrain_warranted", {}, 1.0),
               Metric("shipyard_drift_feature_psi", {"feature": "x1", "kind": "numeric"}, 0.31),
               Metric("shipyard_drift_feature_psi", {"feature": "x2", "kind": "numeric"}, 0.02),
               Metric("shipyard_drift_feature_psi", {"feature": "x3", "kind": "numeric"}, float("nan"))],
              model="churn", version="3")
    assert [r["path"] for r in Recorder.requests] == [f"{INSIGHTS}/metrics"] * 2
    assert {r["auth"] for r in Recorder.requests} == {f"Bearer token-for-{azure.MONITOR_SCOPE}"}
    verdict, psi = (r["body"] for r in Recorder.requests)
    assert verdict["data"]["baseData"] == {
        "metric": "shipyard_retrain_warranted", "namespace": "shipyard/shipyard-dev", "dimNames": ["Model", "Version"],
        "series": [{"dimValues": ["churn", "3"], "min": 1.0, "max": 1.0, "sum": 1.0, "count": 1}]}
    assert psi["data"]["baseData"]["dimNames"] == ["Model", "Version", "Feature", "Kind"]
    assert [s["dimValues"] for s in psi["data"]["baseData"]["series"]] == [["churn", "3", "x1", "numeric"],
                                                                          ["churn", "3", "x2", "numeric"]]
    assert dt.datetime.strptime(verdict["time"], "%Y-%m-%dT%H:%M:%SZ")


def test_sink_registry_reads_the_environment(fake_azure: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azure, "default_credential", FakeCredential)
    monkeypatch.setenv(azure.MONITOR_ENDPOINT_ENV, fake_azure)
    monkeypatch.setenv(azure.NAMESPACE_ENV, "shipyard/shipyard-prod")
    get_sink(f"azure-monitor:{INSIGHTS}").emit([Metric("shipyard_model_quality", {"metric": "roc_auc"}, 0.8)],
                                                model="churn", version="1")
    [request] = Recorder.requests
    assert request["body"]["data"]["baseData"]["namespace"] == "shipyard/shipyard-prod"
    with pytest.raises(ValueError, match="needs a resource id"):
        get_sink("azure-monitor:")


def test_retraining_starts_the_container_apps_job(fake_azure: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azure, "default_credential", FakeCredential)
    monkeypatch.setenv(azure.ARM_ENDPOINT_ENV, fake_azure)
    trigger = get_trigger(f"container-apps-job:{JOB}")
    started = trigger.start("drift", SimpleNamespace(model_name="churn"))
    assert started == "container-apps-job:train-x1 (drift)"
    [request] = Recorder.requests
    assert request["path"] == f"{JOB}/start?api-version={azure.CONTAINER_APPS_API_VERSION}"
    assert request["auth"] == f"Bearer token-for-{azure.ARM_SCOPE}" and request["type"] == "application/json"
    with pytest.raises(ValueError, match="job resource id"):
        get_trigger("container-apps-job:train-churn")


def test_other_targets_never_load_the_azure_sdk() -> None:
    loaded = "('azure', 'adlfs', 'pipelines.adapters')"
    code = ("import sys, pipelines.sinks, pipelines.triggers, pipelines.config, pipelines.monitor; "
            f"print(sorted(m for m in sys.modules if m.startswith({loaded})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
