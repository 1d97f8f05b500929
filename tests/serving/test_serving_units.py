"""Batching, the inference log's table and paths, and the metrics text: no registry, no HTTP."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from pipelines.config import ConfigError
from pipelines.serving.app import ModelServer, Settings, create_app
from pipelines.serving.batching import Batcher, concat_columns
from pipelines.serving.inference_log import Chunk, InferenceLog, chunks_to_table, file_path
from pipelines.serving.metrics import Metrics
from pipelines.serving.model import ServedModel
from pipelines.serving.server import API_KEY_ENV, API_KEY_FILE_ENV, api_key


def fake_model(batchable: bool = True) -> ServedModel:
    """Predicts 2*x; refuses any frame holding x == 13."""

    def predict(frame: pd.DataFrame) -> np.ndarray:
        if (frame["x"] == 13).any():
            raise ValueError("13 is unlucky")
        return frame["x"].to_numpy() * 2

    return ServedModel(name="m", version="1", alias="champion", run_id="r", flavor="sklearn", predict_frame=predict,
                       schema=None, batchable=batchable)


def run_concurrently(batcher: Batcher, values: list[list[float]]) -> list[object]:
    async def go() -> list[object]:
        calls = [batcher.predict({"x": np.array(v)}, len(v)) for v in values]
        return await asyncio.gather(*calls, return_exceptions=True)

    return asyncio.run(go())


def test_concurrent_requests_share_one_model_call_and_get_their_own_rows():
    batches = []
    batcher = Batcher(fake_model(), 1024, lambda m, cols, preds, rows, requests: batches.append(rows))
    results = run_concurrently(batcher, [[1.0], [2.0, 3.0], [4.0]])
    assert [r.tolist() for r in results] == [[2.0], [4.0, 6.0], [8.0]]
    assert batches == [4]


def test_a_failing_request_does_not_fail_its_batch_neighbours():
    batches = []
    batcher = Batcher(fake_model(), 1024, lambda m, cols, preds, rows, requests: batches.append(rows))
    results = run_concurrently(batcher, [[1.0], [13.0], [5.0]])
    assert results[0].tolist() == [2.0] and results[2].tolist() == [10.0]
    assert isinstance(results[1], ValueError)
    assert batches == [1, 1]


def test_non_batchable_models_and_row_limits_predict_separately():
    batches = []
    batcher = Batcher(fake_model(batchable=False), 1024, lambda m, cols, preds, rows, requests: batches.append(rows))
    run_concurrently(batcher, [[1.0], [2.0], [3.0]])
    assert batches == [1, 1, 1]
    batches.clear()
    batcher = Batcher(fake_model(), 2, lambda m, cols, preds, rows, requests: batches.append(rows))
    run_concurrently(batcher, [[1.0], [2.0], [3.0]])
    assert batches == [2, 1]


def test_concat_columns_keeps_types():
    merged = concat_columns([{"x": np.array([1.0]), "c": ["a"]}, {"x": np.array([2.0]), "c": [None]}])
    assert merged["x"].tolist() == [1.0, 2.0] and merged["c"] == ["a", None]


def test_chunks_become_one_table_with_the_logging_columns():
    chunks = [Chunk({"x": np.array([1.0, 2.0]), "c": ["a", "b"]}, np.array([0, 1]), 2, 1_700_000_000.0, "3",
                    [("r1", 2)]),
              Chunk({"x": np.array([3.0]), "c": [None]}, np.array([[0.2, 0.8]]), 1, 1_700_000_001.0, "4", [("r2", 1)])]
    table = chunks_to_table(chunks)
    assert list(table.columns) == ["x", "c", "prediction", "_timestamp", "_model_version", "_request_id",
                                   "_request_row"]
    assert table["x"].tolist() == [1.0, 2.0, 3.0]
    assert table["_model_version"].tolist() == ["3", "3", "4"]
    assert table["_timestamp"].iloc[2] == pd.Timestamp(1_700_000_001, unit="s", tz="UTC")
    assert table["prediction"].tolist()[:2] == [0, 1] and list(table["prediction"].iloc[2]) == [0.2, 0.8]


def test_file_paths_are_dated_and_ordered():
    path = file_path("s3://bucket/logs/churn/", 1_700_000_000.0, "host-1", 7)
    assert path == "s3://bucket/logs/churn/2023-11-14/221320-host-1-000007.parquet"


def test_a_failed_write_keeps_the_rows_for_the_next_flush(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    log = InferenceLog(str(blocker / "logs"))
    log.append({"x": np.array([1.0])}, np.array([1]), 1, "1")
    assert log.flush() == 0 and log.errors == 1 and log.pending == 1
    log.uri = str(tmp_path / "logs")
    assert log.flush() == 1 and log.pending == 0
    assert len(list((tmp_path / "logs").rglob("*.parquet"))) == 1


def test_each_logged_row_carries_its_request_id_and_position():
    chunks = [Chunk({"x": np.arange(3.0)}, np.zeros(3), 3, 0.0, "1", [("a", 1), ("b", 2)]),
              Chunk({"x": np.arange(2.0)}, np.zeros(2), 2, 1.0, "1", [("a", 2)])]  # "a" again: a retry
    table = chunks_to_table(chunks)
    assert table["_request_id"].tolist() == ["a", "b", "b", "a", "a"]
    assert table["_request_row"].tolist() == [0, 0, 1, 0, 1]


class BrokenWriter(InferenceLog):
    """An inference log whose storage refuses every write (a full or read-only volume)."""

    def _write(self, chunks: list[Chunk]) -> None:
        raise OSError(30, "Read-only file system")


def buffered_bytes(log: InferenceLog) -> int:
    return sum(a.nbytes for c in log._chunks for a in (*c.columns.values(), c.predictions))


@pytest.mark.parametrize("writer", ["raising", "unwritable-path"])
def test_a_failing_writer_keeps_memory_bounded_and_counts_every_dropped_row(tmp_path, writer):
    if writer == "raising":
        log = BrokenWriter(str(tmp_path / "logs"), flush_rows=100, max_rows=1_000)
    else:  # the log directory's parent is a file: every makedirs fails, as on a read-only volume
        (tmp_path / "file").write_text("not a directory")
        log = InferenceLog(str(tmp_path / "file" / "logs"), flush_rows=100, max_rows=1_000)
    rows_per_request, requests = 30, 500
    for i in range(requests):
        log.append({"x": np.full(rows_per_request, float(i))}, np.zeros(rows_per_request), rows_per_request, "1")
        if i % 7 == 0:
            assert log.flush() == 0
        assert log.pending <= log.max_rows
    assert log.errors == len(range(0, requests, 7)) and log.rows_written == 0
    assert log.dropped_rows + log.pending == rows_per_request * requests
    assert log.pending == sum(c.rows for c in log._chunks) > log.max_rows - rows_per_request
    assert buffered_bytes(log) <= log.max_rows * 2 * 8  # x and prediction, one float64 each
    # What is kept is the newest: the oldest requests went first.
    assert log._chunks[-1].columns["x"][0] == requests - 1
    assert [c.columns["x"][0] for c in log._chunks] == list(range(requests - len(log._chunks), requests))


def test_the_buffer_keeps_the_newest_request_even_when_it_alone_is_over_the_bound():
    log = BrokenWriter("unused", flush_rows=10, max_rows=10)
    log.append({"x": np.zeros(4)}, np.zeros(4), 4, "1")
    log.append({"x": np.zeros(25)}, np.zeros(25), 25, "1")
    assert log.pending == 25 and log.dropped_rows == 4
    with pytest.raises(ValueError, match="at least flush_rows"):
        InferenceLog("unused", flush_rows=100, max_rows=10)


def test_dropped_rows_are_a_prometheus_counter():
    text = Metrics().render(None, {"dropped": 42})
    assert "# TYPE shipyard_serving_inference_log_dropped_rows_total counter" in text
    assert "shipyard_serving_inference_log_dropped_rows_total 42" in text.splitlines()


def test_the_server_exposes_the_dropped_rows_on_metrics(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    settings = Settings(tracking_uri="http://unused", model_name="m", inference_log_uri=str(tmp_path / "file" / "x"),
                        log_flush_rows=10, log_max_rows=20)
    server = ModelServer(settings)
    for _ in range(5):
        server.inference_log.append({"x": np.zeros(10)}, np.zeros(10), 10, "1")
    server.inference_log.flush()
    client = TestClient(create_app(server))  # no lifespan: nothing loads a model
    assert "shipyard_serving_inference_log_dropped_rows_total 30" in client.get("/metrics").text.splitlines()
    assert "shipyard_serving_inference_log_pending_rows 20" in client.get("/metrics").text.splitlines()


def test_the_api_key_comes_from_a_file_before_the_environment(tmp_path):
    key_file = tmp_path / "api-key"
    key_file.write_text("from-file\n")
    assert api_key({API_KEY_FILE_ENV: str(key_file), API_KEY_ENV: "from-env"}) == "from-file"
    assert api_key({API_KEY_ENV: "from-env"}) == "from-env" and api_key({}) is None
    key_file.write_text("")
    for broken in (str(key_file), str(tmp_path / "missing")):
        with pytest.raises(ConfigError, match=API_KEY_FILE_ENV):
            api_key({API_KEY_FILE_ENV: broken})


@pytest.mark.parametrize("seconds", [0.0005, 0.004, 7.0])
def test_latency_histogram_is_cumulative(seconds):
    metrics = Metrics()
    metrics.observe("invocations", 200, seconds, rows=3)
    text = metrics.render({"model": 'we"ird\nname', "version": "1"}, {"pending": 2})
    assert 'shipyard_serving_request_duration_seconds_bucket{le="+Inf"} 1' in text
    assert 'model="we\\"ird\\nname"' in text
    buckets = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if "_bucket{" in line]
    assert buckets == sorted(buckets) and buckets[-1] == 1
