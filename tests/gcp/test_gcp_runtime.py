"""The GCP runtime adapters: GCS data, inference logs, reports and MLflow artifacts against gcp-storage-emulator
on loopback; Cloud Monitoring and Workflows against a fake REST server on loopback asserting the request shapes."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gcp_helpers import BUCKET

from infra.spec import PlatformSpec
from infra.targets.gcp import training
from pipelines.adapters import gcp
from pipelines.config import from_dict
from pipelines.sinks import Metric, get_sink
from pipelines.storage import list_files, read_bytes, write_bytes

NAMESPACE = "shipyard-test"


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _blob_names(prefix: str) -> list[str]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(credentials=AnonymousCredentials(), project="test-project")
    return sorted(b.name for b in client.list_blobs(BUCKET, prefix=prefix))


# ------------------------------------------------------------------------------------------------ GCS data


def test_datasets_from_gcs_csv_and_parquet(gcs_emulator: str) -> None:
    """The pipelines read datasets from gs:// through the same fsspec code as everywhere else."""
    from pipelines.data import read_dataset

    frame = pd.DataFrame({"x1": [0.5, 1.5, 2.5], "color": ["red", "blue", "red"], "label": [0, 1, 0]})
    write_bytes(f"gs://{BUCKET}/data/train.csv", frame.to_csv(index=False).encode())
    write_bytes(f"gs://{BUCKET}/data/train.parquet", _parquet(frame))
    assert _blob_names("data/") == ["data/train.csv", "data/train.parquet"], "written through to the emulator"
    csv = read_dataset(f"gs://{BUCKET}/data/train.csv")
    parquet = read_dataset(f"gs://{BUCKET}/data/train.parquet")
    pd.testing.assert_frame_equal(csv.frame, frame)
    pd.testing.assert_frame_equal(parquet.frame, frame)


def test_inference_logs_and_reports_on_gcs(gcs_emulator: str) -> None:
    """The monitor's window reader on Parquet inference logs in GCS (only rows in the window), and reports
    written back and listed."""
    from pipelines.monitor import read_window

    now = pd.Timestamp.now(tz="UTC")
    old = pd.DataFrame({"x1": [9.0], "prediction": [1], "_timestamp": [now - pd.Timedelta(days=3)],
                        "_model_version": ["1"]})
    new = pd.DataFrame({"x1": [0.1, 0.2], "prediction": [0, 1], "_timestamp": [now, now], "_model_version": ["2"] * 2})
    write_bytes(f"gs://{BUCKET}/inference/churn/2026-01-01/a.parquet", _parquet(old))
    write_bytes(f"gs://{BUCKET}/inference/churn/2026-01-02/b.parquet", _parquet(new))
    everything, files = read_window(f"gs://{BUCKET}/inference/churn", window_hours=24 * 7, now=now.to_pydatetime())
    assert (len(everything), files) == (3, 2)
    recent, _ = read_window(f"gs://{BUCKET}/inference/churn", window_hours=1, now=now.to_pydatetime())
    assert recent["x1"].tolist() == [0.1, 0.2]

    write_bytes(f"gs://{BUCKET}/reports/churn/latest.json", b'{"drifted": false}')
    assert json.loads(read_bytes(f"gs://{BUCKET}/reports/churn/latest.json")) == {"drifted": False}
    assert [f.uri for f in list_files(f"gs://{BUCKET}/reports/churn", ".json")] == \
        [f"gs://{BUCKET}/reports/churn/latest.json"]


def test_mlflow_logs_registers_and_loads_a_model_on_gcs(gcs_emulator: str, tmp_path: Path) -> None:
    """MLflow with a gs:// artifact location: the model's files land in the bucket and `models:/` loads it."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("gcp-artifacts", artifact_location=f"gs://{BUCKET}/mlflow")
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(model, name="model", input_example=x[:2], pip_requirements=["scikit-learn"],
                                        serialization_format="cloudpickle", registered_model_name="churn")
    names = _blob_names("mlflow/")
    assert any(n.endswith("/MLmodel") for n in names) and any(n.endswith("/model.pkl") for n in names), names
    loaded = mlflow.pyfunc.load_model(f"models:/churn/{info.registered_model_version}")
    assert loaded.predict(x[:5]).tolist() == model.predict(x[:5]).tolist()


# ------------------------------------------------------------------------------------------------ Cloud Monitoring


def test_cloud_monitoring_sink_sends_the_declared_shapes(fake_google) -> None:
    """The sink's time series carry the declared descriptors' types and labels, and match the drift alert's filter
    the program declares."""
    _, fake = fake_google
    sink = get_sink(f"cloud-monitoring:test-project/{NAMESPACE}")
    assert isinstance(sink, gcp.CloudMonitoringSink)
    sink.emit([Metric(gcp.VERDICT_METRIC, {}, 1.0), Metric(gcp.QUALITY_METRIC, {"metric": "roc_auc"}, 0.81),
               Metric("shipyard_drift_feature_psi", {"feature": "x1", "kind": "numeric"}, 0.3),
               Metric("shipyard_drift_prior_psi", {}, float("nan")), Metric(gcp.DATA_QUALITY_METRIC, {}, 2.0)],
              model="churn", version="7")
    [(method, path, body)] = fake.requests
    assert (method, path) == ("POST", "/v3/projects/test-project/timeSeries")
    series = {s["metric"]["type"]: s for s in body["timeSeries"]}
    assert len(series) == 4, "NaN is dropped"
    for name in gcp.DESCRIPTORS:
        declared = gcp.descriptor(NAMESPACE, name)
        sent = series[declared["type"]]
        assert set(sent["metric"]["labels"]) == {label["key"] for label in declared["labels"]}
        assert (sent["metricKind"], sent["valueType"]) == (declared["metricKind"], declared["valueType"])
        assert sent["resource"] == {"type": gcp.RESOURCE_TYPE, "labels": {"project_id": "test-project"}}
    verdict = series[gcp.metric_type(NAMESPACE, gcp.VERDICT_METRIC)]
    assert verdict["points"][0]["value"] == {"doubleValue": 1.0}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$", verdict["points"][0]["interval"]["endTime"])
    alert_filter = gcp.drift_alert_condition(NAMESPACE, "churn")["conditionThreshold"]["filter"]
    wanted = dict(re.findall(r'([\w.]+) = "([^"]+)"', alert_filter))
    labels = {f"metric.label.{k}": v for k, v in verdict["metric"]["labels"].items()}
    seen = {"metric.type": verdict["metric"]["type"], "resource.type": verdict["resource"]["type"], **labels}
    assert all(seen.get(k) == v for k, v in wanted.items()), (wanted, seen)


def test_sink_batches_at_most_200_per_call(fake_google) -> None:
    _, fake = fake_google
    metrics = [Metric("shipyard_drift_feature_psi", {"feature": f"f{i}"}, 0.1) for i in range(450)]
    gcp.CloudMonitoringSink(f"test-project/{NAMESPACE}").emit(metrics, model="churn", version="1")
    assert [len(body["timeSeries"]) for _, _, body in fake.requests] == [200, 200, 50]


def test_sink_needs_a_namespace_and_reports_refused_requests(fake_google) -> None:
    """A sink without its namespace is refused; an API error surfaces with its status instead of passing silently."""
    url, _ = fake_google
    with pytest.raises(ValueError, match="cloud-monitoring:<project>/<namespace>"):
        gcp.CloudMonitoringSink("only-a-project")
    import requests

    with pytest.raises(RuntimeError, match="HTTP 400"):  # the fake refuses an empty batch, as the API does
        gcp._post(requests.Session(), f"{url}/v3/projects/p/timeSeries", {"timeSeries": []})


# ------------------------------------------------------------------------------------------------ Workflows


def test_retraining_starts_the_workflow_with_the_scheduler_shape(fake_google) -> None:
    """The trigger sends the execution request Cloud Scheduler sends on the schedule, reason and model inside."""
    from pipelines.triggers import get_trigger

    _, fake = fake_google
    workflow = "projects/test-project/locations/europe-west1/workflows/shipyard-test-training-churn"
    trigger = get_trigger(f"gcp-workflow:{workflow}")
    assert isinstance(trigger, gcp.WorkflowsTrigger)
    config = from_dict({"version": 1, "model_name": "churn", "tracking_uri": "http://mlflow"})
    started = trigger.start("drift: covariate", config)
    [(_, path, body)] = fake.requests
    assert path == f"/v1/{workflow}/executions"
    assert body == gcp.execution_request("drift: covariate", "churn")
    assert json.loads(body["argument"]) == {"model": "churn", "reason": "drift: covariate"}
    assert started == f"gcp-workflow:{workflow}/executions/e-1"
    scheduled = json.loads(base64.b64decode(training.scheduler_body("schedule", "churn")))
    assert scheduled == gcp.execution_request("schedule", "churn")


def test_trigger_refuses_a_workflow_that_is_not_a_full_name() -> None:
    with pytest.raises(ValueError, match="projects/<p>/locations/<r>/workflows/<w>"):
        gcp.WorkflowsTrigger("shipyard-training-churn")


# ------------------------------------------------------------------------------------------------ imports


def test_other_targets_never_load_the_google_sdks() -> None:
    loaded = "('google.auth', 'google.cloud', 'gcsfs', 'pipelines.adapters')"
    code = ("import sys, pipelines.sinks, pipelines.triggers, pipelines.config, pipelines.monitor; "
            f"print(sorted(m for m in sys.modules if m.startswith({loaded})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_config_names_the_gcp_sink_and_alert_driven_retraining() -> None:
    spec = PlatformSpec.model_validate({"target": "gcp", "region": "europe-west1", "gcp": {"project": "acme-ml-dev"},
                                        "models": [{"name": "churn"}]})
    document = json.loads(training.run_config_text(spec, spec.models[0], tracking_uri="https://m", bucket="b"))
    config = from_dict(document)
    assert config.sinks == ["cloud-monitoring:acme-ml-dev/shipyard-dev"]
    assert isinstance(get_sink(config.sinks[0]), gcp.CloudMonitoringSink)
    assert (config.retrain, config.inference_log_uri, config.reports_uri) == \
        ("none", "gs://b/inference/churn", "gs://b/reports/churn")
