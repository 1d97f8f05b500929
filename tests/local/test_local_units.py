"""The local target's pure parts (layout, decisions, cron, request shaping) and its process shell."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from infra.cron import Cron
from infra.local import layout as lay
from infra.local import procs
from infra.local.commands import request_body, traffic_requests
from infra.local.platform import PlatformError, summarize_report
from infra.local.reconcile import Observed, choose_port, decide, needs_install, stale, unmet_requirements
from infra.local.scheduler import due, monitor_command, parse_job
from infra.local.state import ProcessRecord, State
from infra.stackfile import load_stack

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spec():
    return load_stack("local", project_dir=PROJECT).spec


def test_ports_paths_and_run_config(spec, tmp_path):
    assert lay.planned_ports(spec, 7000) == {"mlflow": 7000, "serve-churn": 7001}
    assert lay.state_dir(PROJECT, "local", {}) == PROJECT / ".shipyard" / "local" / "local"
    assert lay.state_dir(PROJECT, "local", {lay.STATE_DIR_ENV: str(tmp_path)}) == tmp_path
    layout = lay.Layout(tmp_path)
    config = lay.run_config(spec, spec.models[0], layout, "http://127.0.0.1:7000")
    assert config["tracking_uri"] == "http://127.0.0.1:7000" and config["retrain"] == "inline"
    assert config["sinks"] == ["stdout", f"prometheus:{tmp_path}/metrics/churn.prom"]
    assert config["inference_log_uri"] == str(tmp_path / "inference" / "churn")
    assert config["reports_uri"] == str(tmp_path / "reports")


def test_process_fingerprints_follow_configuration(spec, tmp_path):
    layout = lay.Layout(tmp_path)
    model = spec.models[0]
    a = lay.serving_process_spec(model, layout, 7001, "digest-a", "0.1.0+a")
    assert a.fingerprint == lay.serving_process_spec(model, layout, 7001, "digest-a", "0.1.0+a").fingerprint
    assert a.fingerprint != lay.serving_process_spec(model, layout, 7001, "digest-b", "0.1.0+a").fingerprint
    assert a.fingerprint != lay.serving_process_spec(model, layout, 7001, "digest-a", "0.1.0+b").fingerprint
    assert a.health_url == "http://127.0.0.1:7001/ping"
    registry = lay.registry_process(spec, layout, 7000, python="/py")
    assert registry.argv[:4] == ("/py", "-m", "mlflow", "server") and "--workers" in registry.argv
    assert dict(registry.env)["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    scheduler = lay.scheduler_process(spec, layout, "d", "v", python="/py")
    assert f"churn=*/15 * * * *={layout.config('churn')}" in scheduler.argv


def test_decisions(spec, tmp_path):
    process = lay.serving_process_spec(spec.models[0], lay.Layout(tmp_path), 7001, "d", "v")
    same = process.fingerprint
    assert decide(process, None).action == "start"
    assert decide(process, Observed(alive=False, healthy=False, fingerprint=same)).action == "start"
    assert decide(process, Observed(alive=True, healthy=True, fingerprint="old")).action == "restart"
    unhealthy = decide(process, Observed(alive=True, healthy=False, fingerprint=same))
    assert unhealthy.action == "restart" and "7001/ping" in unhealthy.reason
    assert decide(process, Observed(alive=True, healthy=True, fingerprint=same)).action == "keep"
    assert stale(["mlflow", "serve-old", "serve-churn"], ["mlflow", "serve-churn"]) == ["serve-old"]
    assert needs_install(None, "v1", True) and needs_install("v1", "v2", True) and needs_install("v1", "v1", False)
    assert not needs_install("v1", "v1", True)


def test_port_choice():
    free = {5500, 5501, 6000}.__contains__
    assert choose_port(5500, None, False, free, lambda: 9999) == 5500
    assert choose_port(5500, 5600, True, free, lambda: 9999) == 5600  # ours and alive: keep it
    assert choose_port(5502, 6000, False, free, lambda: 9999) == 6000  # planned taken: the recorded one
    assert choose_port(5502, None, False, free, lambda: 9999) == 9999  # both taken: any free port


def test_unmet_requirements():
    installed = {"mlflow": "3.17.2", "numpy": "2.4.6", "pandas": None}
    assert unmet_requirements(["mlflow>=3.10,<4", "numpy>=1.26"], installed) == []
    assert unmet_requirements(["mlflow>=4", "pandas>=2.2", "numpy"], installed) == [
        "mlflow>=4: 3.17.2 is installed", "pandas>=2.2: not installed"]


def test_cron_matching():
    every15 = Cron.parse("*/15 * * * *")
    assert every15.matches(dt.datetime(2026, 1, 1, 10, 30)) and not every15.matches(dt.datetime(2026, 1, 1, 10, 31))
    weekly = Cron.parse("0 3 * * 0")
    assert weekly.next_after(dt.datetime(2026, 11, 26, 12, 0)) == dt.datetime(2026, 11, 29, 3, 0)  # a Sunday
    either = Cron.parse("0 0 1 * 1")  # the 1st, or any Monday
    assert either.matches(dt.datetime(2026, 12, 1)) and either.matches(dt.datetime(2026, 11, 30))
    assert Cron.parse("5-10/5,30 1 * * *").minutes == frozenset({5, 10, 30})
    for bad in ("* * * *", "61 * * * *", "*/0 * * * *", "5-1 * * * *"):
        with pytest.raises(ValueError):
            Cron.parse(bad)
    job = parse_job("churn=*/15 * * * *=/s/configs/churn.json")
    assert job.config == "/s/configs/churn.json" and due([job], dt.datetime(2026, 1, 1, 0, 45)) == [job]
    assert monitor_command("/venv/python", job) == ["/venv/python", "-m", "pipelines", "monitor", "--config",
                                                    "/s/configs/churn.json"]


def test_request_bodies(tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b\n1,x\n")
    assert request_body(csv) == (b"a,b\n1,x\n", "text/csv")
    records = tmp_path / "rows.json"
    records.write_text(json.dumps([{"a": 1}]))
    assert json.loads(request_body(records)[0]) == {"dataframe_records": [{"a": 1}]}
    columns = tmp_path / "cols.json"
    columns.write_text(json.dumps({"a": [1, 2]}))
    assert json.loads(request_body(columns)[0]) == {"inputs": {"a": [1, 2]}}
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1]]}}))
    assert request_body(split) == (split.read_bytes(), "application/json")
    with pytest.raises(PlatformError, match="no such file"):
        request_body(tmp_path / "missing.csv")


def test_traffic_requests_chunk_and_null_missing_values():
    frame = pd.DataFrame({"x": [1.0, math.nan, 3.0], "c": ["a", None, "b"]})
    bodies = [json.loads(b) for b in traffic_requests(frame, chunk=2)]
    assert [len(b["dataframe_split"]["data"]) for b in bodies] == [2, 1]
    assert bodies[0]["dataframe_split"]["data"][1] == [None, None]


def test_report_summary():
    document = {"generated_at": "2026-11-26T10:00:00+00:00", "version": "2", "rows": 500,
                "drift": {"drifted": True, "severity": "major", "drifted_features": ["num_0"]},
                "decision": {"warranted": True, "reasons": ["major covariate drift"]},
                "started": "inline:abc (promoted)", "reports": {"html": "/r/x.html"}}
    summary = summarize_report(document)
    assert summary["drifted"] and summary["severity"] == "major" and summary["drifted_features"] == ["num_0"]
    assert summary["retrain_started"] == "inline:abc (promoted)" and summary["report"] == "/r/x.html"
    assert summarize_report({"drift": None, "decision": {}})["severity"] == "no traffic"


def test_state_round_trip(tmp_path):
    state = State(stack="local", wheel_version="v", ports={"mlflow": 1},
                  processes={"mlflow": ProcessRecord(1, 2, "f", 1, ["a"], "/l")})
    state.save(tmp_path / "state.json")
    assert State.load(tmp_path / "state.json") == state
    assert State.load(tmp_path / "missing.json") == State()


def test_stop_kills_the_whole_process_group(tmp_path):
    # A parent that ignores SIGTERM, with a child: both must be gone after stop().
    script = "import signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
             "subprocess.Popen(['sleep', '60']); time.sleep(60)"
    spec = lay.ProcessSpec("t", (sys.executable, "-c", script), (), None, None)
    record = procs.start(spec, tmp_path / "t.log", tmp_path)
    assert procs.wait_until(lambda: len(procs.group_members(record.pid)) == 2, 10)
    assert procs.is_alive(record)
    assert procs.stop(record, timeout=0.5) == []
    assert not procs.is_alive(record) and procs.group_members(record.pid) == []


def test_recycled_pids_are_not_mistaken_for_ours(tmp_path):
    process = subprocess.Popen(["sleep", "30"])
    try:
        record = ProcessRecord(process.pid, procs.start_ticks(process.pid), "f", None, [], "")
        assert procs.is_alive(record)
        assert not procs.is_alive(ProcessRecord(process.pid, (record.start_ticks or 0) + 1, "f", None, [], ""))
    finally:
        process.kill()
        process.wait()
    time.sleep(0.05)
    assert not procs.is_alive(record)


def test_the_local_target_plans_the_outputs_contract(tmp_path, monkeypatch):
    from infra.plan import build_plan
    from infra.program import OUTPUT_CONTRACT

    monkeypatch.setenv(lay.STATE_DIR_ENV, str(tmp_path))
    monkeypatch.delenv(lay.PORT_BASE_ENV, raising=False)
    plan = build_plan("local", project_dir=PROJECT)
    assert set(OUTPUT_CONTRACT) <= set(plan.outputs)
    assert plan.outputs["endpoints"] == {"churn": "http://127.0.0.1:5501"}
    assert plan.outputs["tracking_uri"] == "http://127.0.0.1:5500"
    assert plan.outputs["artifact_uri"] == (tmp_path / "mlflow" / "artifacts").as_uri()
    assert plan.outputs["pipeline_package_uri"].startswith("file://")
    types = sorted(r["type"] for r in plan.resources)
    assert types == ["shipyard:index:ModelRegistry", "shipyard:index:Monitoring", "shipyard:index:Platform",
                     "shipyard:index:ServingEndpoint", "shipyard:index:TrainingCluster"]
    assert not plan.failed


def test_platform_calls_carry_the_api_key_only_when_set():
    assert lay.auth_headers({}) == {}
    assert lay.auth_headers({lay.API_KEY_ENV: "k"}) == {"Authorization": "Bearer k"}
