"""`shipyard deploy`: the refusal without the Pulumi CLI, and the outputs-contract smoke test against local
servers (a real MLflow registry with a trained champion, and the real model server serving it)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pipeline_helpers import VENV_BIN, config_document, free_port, stop

from infra.deploy import (
    REFUSAL,
    command,
    endpoint_override,
    http_post,
    invocations_url,
    mlflow_champion,
    scoring_payload,
    smoke_test,
)
from pipelines import steps
from pipelines.config import from_dict


@pytest.fixture(scope="module")
def served(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`smoke` trained into the registry as champion and served by `python -m pipelines serve` on loopback."""
    tmp = tmp_path_factory.mktemp("smoke")
    config = from_dict(config_document(tmp, tracking_uri=mlflow_server, model_name="smoke",
                                       experiment="shipyard/smoke"))
    assert steps.run(config).data["outcome"] == "promoted"
    port = free_port()
    log = (tmp / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(VENV_BIN / "python"), "-m", "pipelines", "serve", "--tracking-uri", mlflow_server, "--model-name",
         "smoke", "--host", "127.0.0.1", "--port", str(port), "--inference-log-uri", str(tmp / "inference")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        stop(process)
        pytest.fail(f"model server did not start: {(tmp / 'serve.log').read_text()[-2000:]}")
    yield {"endpoint": url, "tracking_uri": mlflow_server}
    stop(process)


def outputs(tracking_uri: str, endpoint: str) -> dict[str, Any]:
    """Stack outputs as the contract gives them (the keys the smoke test reads)."""
    return {"tracking_uri": tracking_uri, "endpoints": {"smoke": endpoint},
            "models": {"smoke": {"registered_model": "smoke", "alias": "champion", "endpoint": endpoint}}}


def test_refused_in_one_sentence_without_the_pulumi_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert command(argparse.Namespace(stack="aws-dev", config=None, json=True)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"error: {REFUSAL}\n"
    assert REFUSAL.count(". ") == 0 and REFUSAL.endswith(".")


def test_smoke_test_passes_against_a_real_registry_and_model_server(served: dict[str, Any]) -> None:
    report = smoke_test(outputs(served["tracking_uri"], served["endpoint"]), champion=mlflow_champion, post=http_post)
    assert report.ok, report.to_json()
    assert [c.name for c in report.checks] == ["registry smoke@champion", "endpoint smoke"]
    assert "row(s) scored by v1" in report.checks[1].detail


def test_smoke_test_fails_on_each_broken_part(served: dict[str, Any]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    report = smoke_test(outputs(served["tracking_uri"], dead), champion=mlflow_champion, post=http_post)
    assert not report.ok and report.checks[0].ok and not report.checks[1].ok
    assert dead in report.checks[1].detail
    # an override (a port-forward) replaces the unreachable output
    fixed = smoke_test(outputs(served["tracking_uri"], dead), champion=mlflow_champion, post=http_post,
                       overrides={"smoke": served["endpoint"]})
    assert fixed.ok
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow retries a refused connection for minutes
        no_registry = smoke_test(outputs(dead, served["endpoint"]), champion=mlflow_champion, post=http_post)
    assert not no_registry.ok and "did not answer" in no_registry.checks[0].detail
    unset = smoke_test({**outputs(served["tracking_uri"], served["endpoint"]),
                        "models": {"smoke": {"registered_model": "smoke", "alias": "nobody"}}},
                       champion=mlflow_champion, post=http_post)
    assert not unset.ok and "has no nobody yet" in unset.checks[0].detail
    wrong_count = smoke_test(outputs(served["tracking_uri"], served["endpoint"]), champion=mlflow_champion,
                             post=lambda url, request: (200, {"predictions": [1]}))
    assert not wrong_count.ok and "expected" in wrong_count.checks[1].detail
    assert not smoke_test({}, champion=mlflow_champion, post=http_post).ok


def test_payloads_and_urls() -> None:
    assert scoring_payload({"columns": ["a"], "data": [[1], [2]]}) == (
        {"dataframe_split": {"columns": ["a"], "data": [[1], [2]]}}, 2)
    assert scoring_payload({"dataframe_split": {"columns": ["a"], "data": [[1]]}})[1] == 1
    assert invocations_url("http://x:8080") == "http://x:8080/invocations"
    sagemaker = "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/e/invocations"
    assert invocations_url(sagemaker) == sagemaker
    assert endpoint_override("k8s-dev", "churn") == "SHIPYARD_ENDPOINT_K8S_DEV_CHURN"


@pytest.mark.skipif(shutil.which("pulumi") is None, reason="the Pulumi CLI is not installed here: preview and up "
                    "through the Automation API need it (the refusal and the smoke test are tested without it)")
def test_deploy_of_the_local_stack_on_a_file_backend_runs_up_then_the_smoke_test(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("SHIPYARD_TRACKING_URI_LOCAL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert command(argparse.Namespace(stack="local", config=None, json=True)) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["up"]["create"] >= 5 and result["outputs"]["target"] == "local"
    assert not result["smoke"]["ok"] and "did not answer" in result["smoke"]["checks"][0]["detail"]
