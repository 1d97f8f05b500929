"""The same code reads and writes object storage: datasets, configurations, inference logs, reports (moto S3)."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator

import pandas as pd
import pytest
from loopback import free_port

from pipelines.config import load_config
from pipelines.data import read_dataset
from pipelines.demo import demo_frame
from pipelines.monitor import read_window
from pipelines.storage import list_files, read_bytes, write_bytes


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A moto S3 server on loopback with a `data` bucket; credentials and endpoint from the environment."""
    import boto3
    import fsspec
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(key, value)
    fsspec.filesystem("s3").clear_instance_cache()
    client = boto3.client("s3")
    client.create_bucket(Bucket="data")
    yield client
    fsspec.filesystem("s3").clear_instance_cache()
    server.stop()


def test_datasets_configs_logs_and_reports_on_s3(s3) -> None:
    frame = demo_frame("demo://classification?rows=300&seed=1")
    body = io.BytesIO()
    frame.to_parquet(body)
    s3.put_object(Bucket="data", Key="training/churn.parquet", Body=body.getvalue())
    dataset = read_dataset("s3://data/training/churn.parquet")
    assert dataset.rows == 300 and dataset.format == "parquet"
    assert dataset.content_hash == __import__("hashlib").sha256(body.getvalue()).hexdigest()

    s3.put_object(Bucket="data", Key="configs/churn.json",
                  Body=json.dumps({"model_name": "churn", "tracking_uri": "http://mlflow:5000"}).encode())
    assert load_config("s3://data/configs/churn.json", env={}).model_name == "churn"

    now = dt.datetime.now(dt.UTC)
    log = frame.drop(columns=["label"]).assign(prediction=0, _timestamp=pd.Timestamp(now), _model_version="1")
    body = io.BytesIO()
    log.to_parquet(body)
    write_bytes("s3://data/logs/2026-11-26/a.parquet", body.getvalue())
    window, files = read_window("s3://data/logs", window_hours=1, now=now + dt.timedelta(seconds=1))
    assert files == 1 and len(window) == 300

    write_bytes("s3://data/reports/churn/latest.json", b"{}")
    assert [f.uri for f in list_files("s3://data/reports", ".json")] == ["s3://data/reports/churn/latest.json"]
    assert read_bytes("s3://data/reports/churn/latest.json") == b"{}"
