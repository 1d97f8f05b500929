"""Monitoring: the inference-log window, the retraining decision, and a monitor pass that retrains."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from pipeline_helpers import DATASET

from pipelines import registry, steps
from pipelines.config import from_dict
from pipelines.demo import demo_traffic
from pipelines.gates import quality_gate
from pipelines.monitor import decide_retrain, read_window
from pipelines.steps import InlineTrigger
from pipelines.triggers import get_trigger, parse_trigger

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
DRIFT = {"drifted": True, "severity": "major", "covariate_drift": True, "prior_drift": False,
         "drifted_features": ["num_0"], "prediction": {"name": "prediction", "drifted": False}, "label": None}


def _config(**overrides):
    return from_dict({"model_name": "m", "tracking_uri": "x", "retrain": "inline", **overrides})


@pytest.mark.parametrize(("drift", "quality", "reason", "overrides", "warranted", "start", "why_not"), [
    (None, None, None, {}, False, False, "not warranted"),
    (DRIFT, None, None, {}, True, True, None),
    ({**DRIFT, "severity": "minor"}, None, None, {}, False, False, "not warranted"),
    (DRIFT, None, None, {"retrain": "none"}, True, False, "retrain is 'none' for this platform"),
    (DRIFT, None, None, {"monitoring": {"retrain_on_drift": False}}, True, False,
     "monitoring.retrain_on_drift is off"),
    (None, None, "schedule", {"monitoring": {"retrain_on_drift": False}}, True, True, None),
    (None, "bad", None, {}, True, True, None),
])
def test_retraining_decision(drift, quality, reason, overrides, warranted, start, why_not) -> None:
    gate = quality_gate({"accuracy": 0.6}, {"accuracy": 0.7}) if quality else None
    decision = decide_retrain(_config(**overrides), drift=drift, quality=gate, trigger_reason=reason)
    assert (decision.warranted, decision.start, decision.why_not) == (warranted, start, why_not)


def test_retraining_reasons_say_what_happened() -> None:
    gate = quality_gate({"accuracy": 0.6}, {"accuracy": 0.7})
    decision = decide_retrain(_config(), drift=DRIFT, quality=gate, trigger_reason="schedule")
    assert decision.reasons == ["drift: covariate shift in num_0", "quality: accuracy = 0.6000 on labelled traffic",
                                "schedule"]
    minor = decide_retrain(_config(), drift={**DRIFT, "severity": "minor"}, quality=None, trigger_reason=None)
    assert "minor drift" in minor.notes[0]


@pytest.mark.parametrize(("drift", "note"), [
    ({"drifted": False, "too_little_data": True, "n_current": 12}, "too little data (12 rows)"),
    ({**DRIFT, "drifted": False, "severity": "none", "data_quality_columns": ["label", "c1"]},
     "data-quality problems in label, c1"),
])
def test_too_little_data_and_data_quality_are_noted_never_acted_on(drift, note) -> None:
    decision = decide_retrain(_config(), drift=drift, quality=None, trigger_reason=None)
    assert not decision.warranted and not decision.start and note in " ".join(decision.notes)


def test_trigger_registry() -> None:
    assert parse_trigger("none") is None
    assert parse_trigger("kubernetes-job:ml/churn-train") == ("kubernetes-job", "ml/churn-train")
    assert parse_trigger("sagemaker-pipeline:churn") == ("sagemaker-pipeline", "churn")
    with pytest.raises(ValueError, match="unknown retrain trigger"):
        parse_trigger("cron")
    assert isinstance(get_trigger("inline"), InlineTrigger)
    assert get_trigger("none") is None


def _log(path: Path, frame: pd.DataFrame, when: dt.datetime, version: str, mtime: dt.datetime | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.assign(_timestamp=pd.Timestamp(when), _model_version=version).to_parquet(path)
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))


def test_window_reads_recent_rows_only(tmp_path: Path) -> None:
    rows = pd.DataFrame({"x": [1.0, 2.0], "prediction": [0, 1]})
    _log(tmp_path / "d1" / "old.parquet", rows, NOW - dt.timedelta(hours=30), "1", mtime=NOW - dt.timedelta(hours=30))
    _log(tmp_path / "d2" / "new.parquet", rows, NOW - dt.timedelta(hours=1), "1")
    _log(tmp_path / "d2" / "stale-rows.parquet", rows, NOW - dt.timedelta(hours=25), "1")
    epoch = rows.assign(_timestamp=(NOW - dt.timedelta(hours=2)).timestamp(), _model_version="2")
    epoch.to_parquet(tmp_path / "d2" / "epoch.parquet")
    window, files = read_window(str(tmp_path), window_hours=24, now=NOW)
    assert files == 3  # the file last written 30 h ago is not even read
    assert len(window) == 4 and sorted(window["_model_version"].astype(str)) == ["1", "1", "2", "2"]
    empty, _ = read_window(str(tmp_path / "nothing-here"), window_hours=24, now=NOW)
    assert empty.empty


def _traffic(config, client, *, shift: float, rows: int = 1500) -> pd.DataFrame:
    import mlflow

    champion = registry.alias_version(client, config.model_name, config.alias)
    model = mlflow.sklearn.load_model(f"models:/{config.model_name}/{champion.version}")
    frame = demo_traffic(DATASET, rows=rows, shift=shift)
    return frame.assign(prediction=model.predict(frame)), str(champion.version)


def test_monitor_detects_shift_reports_it_and_retrains(make_config, client_for, workspace: Path) -> None:
    config = make_config()
    client = client_for(config)
    assert steps.run(config).ok
    now = dt.datetime.now(dt.UTC)
    quiet, version = _traffic(config, client, shift=0.0)
    quiet = quiet.assign(_request_id=[f"q{i}" for i in range(len(quiet))], _request_row=0)
    _log(workspace / "inference" / "day" / "a.parquet", pd.concat([quiet, quiet.head(500)]),
         now - dt.timedelta(minutes=5), version)  # 500 rows logged twice
    calm = steps.monitor(config)
    assert calm.ok and calm.data["rows"] == 1500 and not calm.data["decision"]["warranted"]
    assert calm.data["duplicates_dropped"] == 500
    assert _champion_version(client) == "1"

    shifted, _ = _traffic(config, client, shift=1.0)
    shifted["num_1"] = shifted["num_1"].map(str)  # numbers logged as text, one of them empty: reported, read on
    shifted.loc[3, "num_1"] = ""
    (workspace / "inference" / "day" / "a.parquet").unlink()
    _log(workspace / "inference" / "day" / "b.parquet", shifted, now - dt.timedelta(minutes=1), version)
    _log(workspace / "inference" / "day" / "other.parquet", quiet, now, "0")  # another version's traffic: ignored
    result = steps.monitor(config)
    assert result.ok, result.summary
    assert result.data["rows"] == 1500 and result.data["versions_seen"] == {"1": 1500, "0": 1500}
    assert result.data["drift"]["drifted"] and "num_0" in result.data["drift"]["drifted_features"]
    problems = {(p["column"], p["problem"]): p["count"] for p in result.data["drift"]["data_quality"]}
    assert problems == {("num_1", "unparseable"): 1, ("num_1", "type changed"): 1499}
    assert "num_1" not in result.data["drift"]["drifted_features"]
    assert result.data["decision"]["warranted"] and result.data["decision"]["reasons"][0].startswith("drift:")
    assert result.data["started"].startswith("inline:") and "(promoted)" in result.data["started"]
    assert _champion_version(client) == "2"
    retrain_run = client.get_run(result.data["started"].split(":")[1].split(" ")[0])
    assert retrain_run.data.tags["shipyard.trigger"].startswith("drift:")

    report = json.loads(Path(result.data["reports"]["json"]).read_text())
    assert report["drift"]["drifted"] and report["version"] == "1"
    assert "num_0" in Path(result.data["reports"]["html"]).read_text()
    assert json.loads((workspace / "reports" / "churn" / "latest.json").read_text()) == report
    prometheus = (workspace / "metrics" / "churn.prom").read_text()
    assert 'shipyard_drift_detected{model="churn",version="1"} 1' in prometheus
    monitor_run = client.get_run(result.data["monitor_run_id"])
    assert monitor_run.data.tags["retrain.warranted"] == "true"
    assert monitor_run.data.tags["retrain.started"] == result.data["started"]


def test_monitor_without_retraining_and_on_schedule(make_config, client_for, workspace: Path) -> None:
    config = make_config(retrain="none")
    assert steps.run(config).ok
    result = steps.monitor(config, reason="schedule")  # no traffic at all
    assert result.ok and result.data["drift"] is None and result.data["rows"] == 0
    assert result.data["decision"]["reasons"] == ["schedule"]
    assert result.data["decision"]["why_not"] == "retrain is 'none' for this platform"
    assert result.data["started"] is None
    assert "No traffic" in Path(result.data["reports"]["html"]).read_text()


def test_monitor_needs_a_champion_and_its_settings(make_config) -> None:
    result = steps.monitor(make_config())
    assert not result.ok and "nothing to monitor" in result.summary[0]
    from pipelines.config import ConfigError

    with pytest.raises(ConfigError, match="reports_uri"):
        steps.monitor(make_config(reports_uri=None))


def _champion_version(client) -> str:
    return str(registry.alias_version(client, "churn", "champion").version)


def test_every_registered_trigger_resolves_to_a_class_with_start() -> None:
    from pipelines.catalog import TRIGGERS
    from pipelines.plugins import resolve

    for name, reference in TRIGGERS.items():
        assert callable(getattr(resolve(reference), "start", None)), name


def test_drift_thresholds_reach_the_run_config() -> None:
    tuned = _config(monitoring={"covariate_effect_threshold": 0.1, "prior_effect_threshold": 0.2,
                                "min_window_rows": 100}).monitoring
    assert (tuned.covariate_effect_threshold, tuned.prior_effect_threshold, tuned.min_window_rows) == (0.1, 0.2, 100)
    defaults = _config().monitoring
    assert (defaults.covariate_effect_threshold, defaults.prior_effect_threshold, defaults.min_window_rows) == (
        0.04, 0.1, 30)


@pytest.mark.parametrize(("monitoring", "key"), [
    ({"covariate_effect_threshold": 0}, "monitoring.covariate_effect_threshold"),
    ({"covariate_effect_threshold": 1.5}, "monitoring.covariate_effect_threshold"),
    ({"prior_effect_threshold": -1}, "monitoring.prior_effect_threshold"),
    ({"min_window_rows": 0}, "monitoring.min_window_rows"),
])
def test_bad_drift_thresholds_are_refused_naming_the_key(monitoring, key) -> None:
    from pipelines.config import ConfigError

    with pytest.raises(ConfigError, match=key):
        _config(monitoring=monitoring)

