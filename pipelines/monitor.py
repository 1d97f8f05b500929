"""Monitoring: the champion's reference profile against a window of inference logs, and what follows from it.

The window: Parquet files under `inference_log_uri` (feature columns, `prediction`, `_timestamp`,
`_model_version`, and the target column once labels arrive) whose rows fall within the last
`monitoring.window_hours`; only rows served by the current champion version are compared with its
reference. Drift statistics come from `pipelines.drift.compare`; metrics go to every configured sink;
the JSON and HTML reports go under `reports_uri/<model>/`. Retraining is warranted by major drift (over the
spec's PSI thresholds, statistically significant), by quality under `monitoring.min_quality` on labelled
rows, or by an explicit schedule trigger (`--reason schedule`); it is started through the configured
trigger when the spec allows (`retrain` not `none`; drift and quality also need `retrain_on_drift`).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from dataclasses import asdict, dataclass, field
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from pipelines import registry
from pipelines.config import RunConfig
from pipelines.drift import compare, render_html
from pipelines.gates import GateResult, quality_gate
from pipelines.pipeline import REFERENCE_PROFILE, TAG_STEP, TAG_TRIGGER, version_artifact
from pipelines.sinks import Metric, get_sink
from pipelines.storage import join, list_files, read_bytes, write_bytes
from pipelines.tracking import connect
from pipelines.triggers import get_trigger

TIMESTAMP = "_timestamp"
MODEL_VERSION = "_model_version"
PREDICTION = "prediction"
REQUEST_ID = "_request_id"
REQUEST_ROW = "_request_row"
SCHEDULE = "schedule"


@dataclass
class RetrainDecision:
    """Whether retraining is warranted, why, and whether it may be started here."""

    warranted: bool
    reasons: list[str]
    start: bool
    why_not: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """The reasons as one line (the retraining run's trigger tag)."""
        return "; ".join(self.reasons) or "none"


def decide_retrain(config: RunConfig, *, drift: dict[str, Any] | None, quality: GateResult | None,
                   trigger_reason: str | None) -> RetrainDecision:
    """Pure: the retraining decision from a drift report (`DriftReport.to_dict()`), the quality gate and the trigger.

    Major drift warrants retraining; minor drift, too little data and data-quality problems (a schema change, cells
    that cannot be read) are noted and never acted on: retraining fixes none of them.
    """
    reasons: list[str] = []
    notes: list[str] = []
    if drift is not None and drift.get("too_little_data"):
        notes.append(f"too little data ({drift.get('n_current', 0)} rows): nothing tested, nothing acted on")
    if drift is not None and drift.get("drifted"):
        shifted = [*drift.get("drifted_features", [])]
        shifted += [p["name"] for p in (drift.get("prediction"), drift.get("label")) if p and p.get("drifted")]
        if drift.get("severity") == "major":
            kinds = [k for k, flag in (("covariate", drift.get("covariate_drift")),
                                       ("prior", drift.get("prior_drift"))) if flag]
            reasons.append(f"drift: {' and '.join(kinds)} shift in {', '.join(shifted)}")
        else:
            notes.append(f"minor drift (significant, under the effect and PSI thresholds) in {', '.join(shifted)}: "
                         "not acted on")
    if drift is not None and drift.get("data_quality_columns"):
        notes.append(f"data-quality problems in {', '.join(drift['data_quality_columns'])}: alerted, not acted on")
    if quality is not None and not quality.passed:
        reasons.append("quality: " + "; ".join(c.detail for c in quality.checks if not c.passed))
    scheduled = trigger_reason == SCHEDULE
    if scheduled:
        reasons.append("schedule")
    warranted = bool(reasons)
    why_not = None
    if not warranted:
        why_not = "not warranted"
    elif config.retrain == "none":
        why_not = "retrain is 'none' for this platform"
    elif not scheduled and not config.monitoring.retrain_on_drift:
        why_not = "monitoring.retrain_on_drift is off"
    return RetrainDecision(warranted=warranted, reasons=reasons, start=warranted and why_not is None,
                           why_not=why_not, notes=notes)


def drop_repeated_requests(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The window without repeated requests (client retries, double logging), and how many rows were dropped.

    A row is identified by its request id and its position in the request (`_request_id`, `_request_row`); the
    first copy is kept. Rows logged before request ids existed (no column, or no id) are all kept.
    """
    if REQUEST_ID not in frame.columns or not len(frame):
        return frame, 0
    keys = [REQUEST_ID, *([REQUEST_ROW] if REQUEST_ROW in frame.columns else [])]
    repeated = frame.duplicated(subset=keys, keep="first").to_numpy() & frame[REQUEST_ID].notna().to_numpy()
    return (frame.loc[~repeated].reset_index(drop=True), int(repeated.sum())) if repeated.any() else (frame, 0)


def _as_utc(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        seconds = values.astype(float)
        unit_ms = seconds.abs().max() > 1e11  # epoch milliseconds
        return pd.to_datetime(seconds / 1000.0 if unit_ms else seconds, unit="s", utc=True)
    return pd.to_datetime(values, utc=True)


def read_window(uri: str, *, window_hours: int, now: dt.datetime) -> tuple[pd.DataFrame, int]:
    """Rows logged within `window_hours` before `now`, and how many files were read.

    Files last modified before the window's start cannot hold rows inside it and are not read.
    """
    start = now - dt.timedelta(hours=window_hours)
    files = [f for f in list_files(uri, ".parquet") if f.mtime is None or f.mtime >= start.timestamp()]
    frames = []
    for entry in files:
        frame = pd.read_parquet(io.BytesIO(read_bytes(entry.uri)))
        if not len(frame):
            continue
        if TIMESTAMP not in frame.columns:
            raise ValueError(f"inference log {entry.uri} has no {TIMESTAMP!r} column")
        stamps = _as_utc(frame[TIMESTAMP])
        keep = ((stamps >= pd.Timestamp(start)) & (stamps <= pd.Timestamp(now))).to_numpy()
        frames.append(frame.loc[keep].assign(**{TIMESTAMP: stamps[keep]}))
    if not frames:
        return pd.DataFrame(), len(files)
    return pd.concat(frames, ignore_index=True), len(files)


def _versions(frame: pd.DataFrame) -> dict[str, int]:
    if MODEL_VERSION not in frame.columns:
        return {}
    return {str(k): int(v) for k, v in frame[MODEL_VERSION].astype(str).value_counts().items()}


@dataclass
class MonitorOutcome:
    """What one monitoring pass found and did."""

    model: str
    version: str
    rows: int
    versions_seen: dict[str, int]
    drift: dict[str, Any] | None
    quality: dict[str, Any] | None
    decision: RetrainDecision
    started: str | None = None
    duplicates_dropped: int = 0
    errors: list[str] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)
    monitor_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return asdict(self)


def _stamp(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def _json(data: Any) -> bytes:
    def plain(value: Any) -> Any:
        if isinstance(value, np.generic):
            return value.item()
        return str(value)

    return json.dumps(data, indent=2, sort_keys=True, default=plain).encode()


def run_monitor(config: RunConfig, *, reason: str | None = None, now: dt.datetime | None = None) -> MonitorOutcome:
    """One monitoring pass for the champion of `config`'s model (see the module docstring)."""
    log_uri = config.require("inference_log_uri", "monitor")
    reports_uri = config.require("reports_uri", "monitor")
    now = now or dt.datetime.now(dt.UTC)
    tracking = connect(config)
    champion = registry.alias_version(tracking.client, config.model_name, config.alias)
    if champion is None:
        raise registry.RegistryError(f"{config.model_name} has no {config.alias}: nothing to monitor")
    version = str(champion.version)
    reference = version_artifact(tracking, config.model_name, version, REFERENCE_PROFILE)
    if reference is None:
        raise registry.RegistryError(f"{config.model_name} v{version} carries no {REFERENCE_PROFILE}: retrain it")
    window, _ = read_window(log_uri, window_hours=config.monitoring.window_hours, now=now)
    seen = _versions(window)
    current = window[window[MODEL_VERSION].astype(str) == version] if MODEL_VERSION in window.columns else window
    current, duplicates = drop_repeated_requests(current.reset_index(drop=True))
    drift = quality = None
    report = None
    errors: list[str] = []
    if len(current):
        label = config.target_column if config.target_column in current.columns else None
        monitoring = config.monitoring
        try:
            report = compare(reference, current, prediction_column=PREDICTION, label_column=label,
                             monitoring=monitoring)
        except Exception as exc:  # the pass still reports, emits what it has and decides
            errors.append(f"drift comparison: {type(exc).__name__}: {exc}")
        if report is not None:
            drift = report.to_dict()
            if report.n_labelled and report.quality and monitoring.min_quality:
                quality = quality_gate(report.quality, monitoring.min_quality)
    decision = decide_retrain(config, drift=drift, quality=quality, trigger_reason=reason)
    outcome = MonitorOutcome(model=config.model_name, version=version, rows=len(current), versions_seen=seen,
                             drift=drift, quality=quality.to_dict() if quality else None, decision=decision,
                             duplicates_dropped=duplicates, errors=errors)
    metrics = [*(report.metrics() if report is not None else []),
               Metric("shipyard_monitor_duplicate_rows_dropped", {}, float(duplicates)),
               Metric("shipyard_monitor_errors", {}, float(len(errors))),
               Metric("shipyard_retrain_warranted", {}, float(decision.warranted))]
    for spec in config.sinks:
        try:
            get_sink(spec).emit(metrics, model=config.model_name, version=version)
        except Exception as exc:  # one broken sink must not silence the others or the retraining decision
            outcome.errors.append(f"sink {spec}: {type(exc).__name__}: {exc}")
    run = tracking.client.create_run(tracking.experiment_id, run_name=f"{config.model_name}-monitor",
                                     tags={TAG_STEP: "monitor", TAG_TRIGGER: reason or "monitor",
                                           "monitored.version": version})
    outcome.monitor_run_id = run.info.run_id
    if decision.start:
        try:
            trigger = get_trigger(config.retrain)
            assert trigger is not None
            outcome.started = trigger.start(decision.reason, config)
        except Exception as exc:  # record and report; the monitoring result itself stands
            outcome.errors.append(f"retrain trigger {config.retrain}: {type(exc).__name__}: {exc}")
    _write_reports(outcome, report, reports_uri, now)
    _record_run(tracking, outcome)
    for error in outcome.errors:
        print(f"error: {error}", file=sys.stderr)
    return outcome


def _write_reports(outcome: MonitorOutcome, report: Any, reports_uri: str, now: dt.datetime) -> None:
    base = join(reports_uri, outcome.model)
    name = f"drift-{_stamp(now)}-v{outcome.version}"
    outcome.reports = {"json": join(base, f"{name}.json"), "html": join(base, f"{name}.html")}
    document = {"generated_at": now.isoformat(), **outcome.to_dict()}
    write_bytes(outcome.reports["json"], _json(document))
    write_bytes(join(base, "latest.json"), _json(document))
    if report is not None:
        html = render_html(report, title=f"Drift report: {outcome.model} v{outcome.version}").encode()
    else:
        happened = "; ".join(outcome.errors) or "No traffic for this version in the window; nothing was compared."
        html = (f"<!doctype html><title>Drift report</title><h1>{outcome.model} v{outcome.version}</h1>"
                f"<p>{escape(happened)}</p>").encode()
    write_bytes(outcome.reports["html"], html)
    write_bytes(join(base, "latest.html"), html)


def _record_run(tracking: Any, outcome: MonitorOutcome) -> None:
    from mlflow.entities import Metric as MlflowMetric
    from mlflow.entities import RunTag

    client, run_id = tracking.client, outcome.monitor_run_id
    drift = outcome.drift or {}
    timestamp = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    values = {"window_rows": outcome.rows, "drift_detected": float(bool(drift.get("drifted"))),
              "features_drifted": float(len(drift.get("drifted_features", []))),
              "retrain_warranted": float(outcome.decision.warranted)}
    tags = {"retrain.warranted": str(outcome.decision.warranted).lower(),
            "retrain.reason": outcome.decision.reason[:5000],
            "retrain.started": outcome.started or "no",
            "drift.severity": str(drift.get("severity", "n/a"))}
    client.log_batch(run_id, metrics=[MlflowMetric(k, float(v), timestamp, 0) for k, v in values.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    client.log_dict(run_id, outcome.to_dict(), "monitoring/report.json")
    client.set_terminated(run_id, "FAILED" if outcome.errors else "FINISHED")
