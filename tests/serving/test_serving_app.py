"""The model server app against real registered models: formats, equality with pyfunc, errors, metrics,
auth, hot swap and the inference log."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from pipelines.serving.app import ModelServer, Settings, create_app, registry_loader
from pipelines.serving.model import ServedModel


def _rows(frame: pd.DataFrame) -> list[list[object]]:
    return frame.astype(object).where(frame.notna(), None).to_numpy().tolist()


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [dict(zip(frame.columns, row, strict=True)) for row in _rows(frame)]


def payloads(frame: pd.DataFrame) -> dict[str, dict[str, object]]:
    """The same rows in every JSON format of the scoring protocol."""
    columns = {c: [r[i] for r in _rows(frame)] for i, c in enumerate(frame.columns)}
    return {
        "dataframe_split": {"dataframe_split": {"columns": list(frame.columns), "data": _rows(frame)}},
        "dataframe_records": {"dataframe_records": _records(frame)},
        "instances": {"instances": _records(frame)},
        "inputs-columns": {"inputs": columns},
        "inputs-records": {"inputs": _records(frame)},
    }


def serve(registry, **overrides) -> TestClient:
    """A started server (lifespan running) whose model is loaded."""
    settings = Settings(tracking_uri=registry.tracking_uri, model_name="churn", poll_seconds=3600, **overrides)
    client = TestClient(create_app(ModelServer(settings)))
    client.__enter__()
    deadline = time.monotonic() + 60
    while client.get("/ping").status_code != 200:
        assert time.monotonic() < deadline, client.get("/health").json()
        time.sleep(0.05)
    return client


@pytest.fixture
def churn(registry):
    client = serve(registry)
    yield client
    client.__exit__(None, None, None)


@pytest.mark.parametrize("fast", [True, False], ids=["sklearn-fast-path", "pyfunc"])
@pytest.mark.parametrize("model", ["churn", "demand"])
def test_every_format_predicts_exactly_what_pyfunc_predicts(registry, traffic, fast, model):
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model}@champion")
    expected = pyfunc.predict(traffic).tolist()
    settings = Settings(tracking_uri=registry.tracking_uri, model_name=model, poll_seconds=3600, fast_path=fast)
    with TestClient(create_app(ModelServer(settings))) as client:
        while client.get("/ping").status_code != 200:
            time.sleep(0.05)
        assert client.get("/health").json()["flavor"] == ("sklearn" if fast else "pyfunc")
        for name, body in payloads(traffic).items():
            response = client.post("/invocations", json=body)
            assert response.status_code == 200, (name, response.text)
            assert response.json() == {"predictions": expected}, name
        csv = traffic.to_csv(index=False)
        response = client.post("/invocations", content=csv, headers={"content-type": "text/csv"})
        assert response.json() == {"predictions": expected}
        one = client.post(f"/models/{model}/invocations", json={"dataframe_records": _records(traffic.head(1))})
        # Float outputs may differ in the last bit with the number of rows predicted together: compare like with like.
        assert one.json() == {"predictions": pyfunc.predict(traffic.head(1)).tolist()}


def test_bad_requests_get_4xx_naming_the_problem_and_the_server_keeps_serving(churn, traffic):
    good = payloads(traffic.head(3))["dataframe_split"]
    bad_type = payloads(traffic.head(1))["dataframe_records"]
    bad_type["dataframe_records"][0]["num_0"] = "high"
    missing = {"dataframe_records": [{k: v for k, v in r.items() if k != "cat_0"}
                                     for r in _records(traffic.head(2))]}
    cases = [
        (dict(content=b"{oops", headers={"content-type": "application/json"}), 400, "malformed JSON"),
        (dict(json={"dataframe": []}), 400, "unknown key(s) 'dataframe'"),
        (dict(json=missing), 400, "missing column(s) ['cat_0']"),
        (dict(json=bad_type), 400, "column 'num_0': expected numbers"),
        (dict(content=b"a,b\n1", headers={"content-type": "application/xml"}), 415, "application/xml"),
    ]
    for kwargs, status, named in cases:
        response = churn.post("/invocations", **kwargs)
        assert response.status_code == status, response.text
        assert named in response.json()["message"]
    unknown = churn.post("/models/fraud/invocations", json=good)
    assert unknown.status_code == 404 and "unknown model 'fraud'" in unknown.json()["message"]
    assert churn.post("/v2/score", json=good).status_code == 404
    assert churn.get("/invocations").status_code == 405
    assert churn.post("/invocations", json=good).status_code == 200


def test_health_and_prometheus_metrics(churn, traffic):
    parser = pytest.importorskip("prometheus_client.parser", reason="the Prometheus text parser (dev extra)")
    text_string_to_metric_families = parser.text_string_to_metric_families

    churn.post("/invocations", json=payloads(traffic.head(4))["dataframe_split"])
    churn.post("/invocations", json={"nope": 1})
    health = churn.get("/health").json()
    assert health["model_name"] == "churn" and health["version"] == "1" and health["alias"] == "champion"
    assert health["loaded_at"].endswith("+00:00")
    response = churn.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests = {(s.labels["handler"], s.labels["status"]): s.value
                for s in families["shipyard_serving_requests"].samples}
    assert requests[("invocations", "200")] == 1 and requests[("invocations", "400")] == 1
    histogram = families["shipyard_serving_request_duration_seconds"]
    assert histogram.type == "histogram"
    assert [s.value for s in histogram.samples if s.name.endswith("_count")] == [2]
    rows = families["shipyard_serving_rows_predicted"].samples[0].value
    assert rows == 4
    info = families["shipyard_serving_model_info"].samples[0]
    assert info.labels == {"model": "churn", "version": "1", "alias": "champion", "flavor": "sklearn"}


def test_api_key_auth(registry, traffic):
    client = serve(registry, api_key="s3cret-key")
    body = payloads(traffic.head(1))["dataframe_split"]
    try:
        assert client.post("/invocations", json=body).status_code == 401
        assert client.post("/invocations", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.post("/invocations", json=body, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
        assert client.post("/invocations", json=body, headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert client.post("/-/reload").status_code == 401
        assert client.get("/ping").status_code == 200
        assert "s3cret" not in client.get("/health").text + client.get("/metrics").text
    finally:
        client.__exit__(None, None, None)


def test_hot_swap_follows_the_alias_and_validates_first(registry, traffic):
    client_api = mlflow.MlflowClient(registry.tracking_uri)
    client_api.set_registered_model_alias("churn", "swap", "1")
    client = serve(registry, alias="swap")
    body = payloads(traffic)["dataframe_split"]
    try:
        assert client.get("/health").json()["version"] == "1"
        client_api.set_registered_model_alias("churn", "swap", "2")
        assert client.post("/-/reload").json() == {"changed": True, "version": "2", "previous": "1"}
        assert client.post("/-/reload").json() == {"changed": False, "version": "2"}
        expected = mlflow.pyfunc.load_model("models:/churn/2").predict(traffic).tolist()
        assert client.post("/invocations", json=body).json() == {"predictions": expected}
        assert client.get("/health").json()["version"] == "2"
    finally:
        client.__exit__(None, None, None)
        client_api.delete_registered_model_alias("churn", "swap")


def test_a_version_failing_validation_is_not_swapped_in(registry):
    good = registry_loader(Settings(registry.tracking_uri, "churn"), "1")
    versions = iter(["1", "2"])

    def loader(settings, version):
        if version == "2":
            return ServedModel(**{**good.__dict__, "version": "2", "predict_frame": lambda frame: []})
        return good

    server = ModelServer(Settings(registry.tracking_uri, "churn"), loader=loader, resolver=lambda s: next(versions))
    assert server.refresh()["changed"] is True
    result = server.refresh()
    assert result["changed"] is False and result["version"] == "1" and "gave 0 predictions" in result["error"]
    assert server.current[0].version == "1" and server.metrics.reload_errors == 1


def test_no_champion_yet_is_503_not_500(registry):
    settings = Settings(registry.tracking_uri, "unknown-model", poll_seconds=3600)
    with TestClient(create_app(ModelServer(settings))) as client:
        assert client.get("/ping").status_code == 503
        deadline = time.monotonic() + 60
        while (health := client.get("/health")).json()["last_error"] is None:  # the first check runs in a thread
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert health.status_code == 503 and "does not exist" in health.json()["last_error"]
        response = client.post("/invocations", json={"inputs": {"a": [1]}})
        assert response.status_code == 503 and "no model loaded" in response.json()["message"]


def test_inference_log_is_written_as_parquet(registry, traffic, tmp_path):
    log_uri = str(tmp_path / "inference")
    client = serve(registry, inference_log_uri=log_uri)
    try:
        client.post("/invocations", json=payloads(traffic.head(7))["dataframe_records"],
                    headers={"x-request-id": "retried-7"})
        client.post("/invocations", content=traffic.head(3).to_csv(index=False), headers={"content-type": "text/csv"})
        client.post("/invocations", json={"bad": 1})
        assert client.post("/-/flush").json() == {"rows_written": 10}
    finally:
        client.__exit__(None, None, None)
    files = sorted((tmp_path / "inference").rglob("*.parquet"))
    assert len(files) == 1 and not list((tmp_path / "inference").rglob("*.partial"))
    logged = pd.read_parquet(files[0])
    assert list(logged.columns) == [*traffic.columns, "prediction", "_timestamp", "_model_version", "_request_id",
                                    "_request_row"]
    assert logged["_request_id"].tolist()[:7] == ["retried-7"] * 7 and logged["_request_row"].tolist() == [
        *range(7), *range(3)]
    assert logged["_request_id"].iloc[7] != "retried-7" and logged["_request_id"].iloc[7:].nunique() == 1
    assert len(logged) == 10 and set(logged["_model_version"]) == {"1"}
    assert str(logged["_timestamp"].dtype).startswith("datetime64") and logged["_timestamp"].dt.tz is not None
    expected = mlflow.pyfunc.load_model("models:/churn/1").predict(pd.concat([traffic.head(7), traffic.head(3)]))
    assert logged["prediction"].tolist() == expected.tolist()
    np.testing.assert_array_equal(logged["num_0"].to_numpy(), pd.concat([traffic.head(7), traffic.head(3)])["num_0"])


def test_concurrent_requests_are_batched_with_unchanged_predictions(registry, traffic):
    settings = Settings(registry.tracking_uri, "churn")
    server = ModelServer(settings)
    server.install(registry_loader(settings, "1"))
    expected = mlflow.pyfunc.load_model("models:/churn/1").predict(traffic).tolist()
    bodies = [json.dumps({"dataframe_records": [row]}) for row in _records(traffic)]

    async def fire() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(server))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(client.post("/invocations", content=b,
                                                      headers={"content-type": "application/json"}) for b in bodies))

    responses = asyncio.run(fire())
    assert [r.json()["predictions"][0] for r in responses] == expected
    assert server.metrics.batches < len(bodies)
