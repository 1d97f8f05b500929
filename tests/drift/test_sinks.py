"""Metric sinks: JSON lines on stdout, Prometheus text files parsed back, the lazy registry."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.sinks import SINKS, Metric, PrometheusFileSink, StdoutSink, get_sink, prometheus_text

METRICS = [
    Metric("shipyard_drift_feature_psi", {"feature": "x0", "kind": "numeric"}, 0.25),
    Metric("shipyard_drift_feature_psi", {"feature": 'we"ird\\name\n', "kind": "categorical"}, 0.0),
    Metric("shipyard_drift_detected", {}, 1.0),
    Metric("shipyard_model_quality", {"metric": "accuracy"}, float("nan")),
]


def test_stdout_sink_writes_one_json_object_per_metric():
    stream = io.StringIO()
    StdoutSink(stream=stream).emit(METRICS, model="churn", version="3")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(records) == len(METRICS)
    assert records[0] == {
        "metric": "shipyard_drift_feature_psi",
        "labels": {"model": "churn", "version": "3", "feature": "x0", "kind": "numeric"},
        "value": 0.25,
    }
    assert records[-1]["value"] is None  # NaN is not JSON


def test_prometheus_file_parses_back_with_every_sample(tmp_path):
    path = tmp_path / "textfile" / "{model}.prom"
    PrometheusFileSink(str(path)).emit(METRICS, model="churn", version="3")
    written = tmp_path / "textfile" / "churn.prom"
    families = {family.name: family for family in text_string_to_metric_families(written.read_text())}
    assert {family.type for family in families.values()} == {"gauge"}
    samples = [sample for family in families.values() for sample in family.samples]
    assert len(samples) == len(METRICS)
    by_feature = {s.labels.get("feature"): s for s in samples if s.name == "shipyard_drift_feature_psi"}
    assert by_feature["x0"].value == 0.25 and by_feature["x0"].labels["model"] == "churn"
    assert 'we"ird\\name\n' in by_feature  # escaping round-trips
    assert math.isnan(next(s.value for s in samples if s.name == "shipyard_model_quality"))
    assert list(written.parent.iterdir()) == [written]  # the temporary file was renamed, not left behind


def test_prometheus_file_is_replaced_whole_on_each_emit(tmp_path):
    sink = get_sink(f"prometheus:{tmp_path / 'drift.prom'}")
    sink.emit(METRICS, model="churn", version="3")
    sink.emit(METRICS[2:3], model="churn", version="4")
    text = (tmp_path / "drift.prom").read_text()
    assert text.splitlines()[-2:] == [
        "# TYPE shipyard_drift_detected gauge",
        'shipyard_drift_detected{model="churn",version="4"} 1.0',
    ]


def test_prometheus_text_refuses_invalid_names():
    with pytest.raises(ValueError, match="metric name"):
        prometheus_text([Metric("drift-psi", {}, 1.0)], model="m", version="1")
    with pytest.raises(ValueError, match="label names"):
        prometheus_text([Metric("drift_psi", {"bad-label": "x"}, 1.0)], model="m", version="1")
    with pytest.raises(ValueError, match="label names"):  # one family, one set of label names
        mixed = [Metric("drift_psi", {"a": "x"}, 1.0), Metric("drift_psi", {"b": "x"}, 1.0)]
        prometheus_text(mixed, model="m", version="1")


def test_get_sink_by_spec_and_clear_errors():
    assert isinstance(get_sink("stdout"), StdoutSink)
    assert isinstance(get_sink("prometheus:/tmp/x.prom"), PrometheusFileSink)
    with pytest.raises(ValueError, match="unknown sink 'statsd'"):
        get_sink("statsd:localhost")
    with pytest.raises(ValueError, match="needs a file"):
        get_sink("prometheus")
    with pytest.raises(ValueError, match="no argument"):
        get_sink("stdout:extra")


def test_cloud_sinks_are_registered_by_path_and_imported_only_when_used():
    assert SINKS["cloudwatch"] == "pipelines.adapters.aws:CloudWatchSink"
    code = "import sys, pipelines.sinks; print(any(m.startswith(('boto3', 'pipelines.adapters')) for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
