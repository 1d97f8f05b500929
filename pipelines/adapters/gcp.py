"""GCP runtime adapters: drift metrics to Cloud Monitoring, retraining through the Workflows API.

Datasets, inference logs and reports on `gs://` need no adapter: `pipelines.storage` reads and writes them
through fsspec (gcsfs), and MLflow writes `gs://` artifacts with google-cloud-storage; both follow
`STORAGE_EMULATOR_HOST` when it is set.
- `CloudMonitoringSink` (`cloud-monitoring:<project>/<namespace>` in a run configuration's `sinks`): drift
  metrics as custom metrics (`custom.googleapis.com/shipyard/<namespace>/<name>`; the namespace keeps two
  platforms in one project apart), 200 time series per call.
- `DESCRIPTORS`, `drift_alert_condition`, `data_quality_alert_condition`: the metric descriptors and the alerts'
  conditions; the Pulumi program declares the same descriptors and alert policies from these definitions.
- `WorkflowsTrigger` (`gcp-workflow:projects/<p>/locations/<r>/workflows/<w>`): start a training workflow
  with the reason as its argument; Cloud Scheduler sends the same `execution_request` on the schedule.

Both speak the REST APIs with an authorized session from the environment's credentials (google-auth,
imported on first use); `SHIPYARD_GCP_MONITORING_ENDPOINT` and `SHIPYARD_GCP_WORKFLOWS_ENDPOINT` point them
elsewhere (tests use a fake server on loopback).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.catalog import DATA_QUALITY_METRIC, higher_is_better

if TYPE_CHECKING:
    from pipelines.config import RunConfig
    from pipelines.sinks import Metric

METRIC_PREFIX = "custom.googleapis.com/shipyard/"
#: The monitor's verdict: retraining is warranted (drift of major severity, or quality under its floor).
VERDICT_METRIC = "shipyard_retrain_warranted"
QUALITY_METRIC = "shipyard_model_quality"
MODEL_LABEL = "model"
VERSION_LABEL = "version"
#: Cloud Monitoring accepts at most this many time series per CreateTimeSeries call.
TIME_SERIES_BATCH = 200
#: The monitored resource of every shipyard metric (the metric's labels say which model).
RESOURCE_TYPE = "global"
MONITORING_ENDPOINT = "https://monitoring.googleapis.com"
WORKFLOWS_ENDPOINT = "https://workflowexecutions.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_LABEL_KEY = re.compile(r"[^a-z0-9_]")
_WORKFLOW = re.compile(r"^projects/[^/]+/locations/[^/]+/workflows/[^/]+$")


def metric_type(namespace: str, name: str) -> str:
    """The Cloud Monitoring metric type of a shipyard metric of one platform."""
    return f"{METRIC_PREFIX}{namespace}/{name}"


#: The metrics declared before the first write, so alert policies can name them: description and labels.
DESCRIPTORS: dict[str, tuple[str, tuple[str, ...]]] = {
    VERDICT_METRIC: ("1 when the monitor finds drift or quality loss that warrants retraining",
                     (MODEL_LABEL, VERSION_LABEL)),
    QUALITY_METRIC: ("a model's quality metric once labels arrive", (MODEL_LABEL, VERSION_LABEL, "metric")),
    DATA_QUALITY_METRIC: ("columns of the monitored window with data-quality problems (never drift)",
                          (MODEL_LABEL, VERSION_LABEL)),
}


def descriptor(namespace: str, name: str) -> dict[str, Any]:
    """The CreateMetricDescriptor body of one of `DESCRIPTORS`: a gauge of doubles with string labels."""
    description, labels = DESCRIPTORS[name]
    return {"type": metric_type(namespace, name), "metricKind": "GAUGE", "valueType": "DOUBLE", "unit": "1",
            "displayName": name, "description": description,
            "labels": [{"key": key, "valueType": "STRING"} for key in labels]}


def label_key(label: str) -> str:
    """A metric label as a Cloud Monitoring label key ([a-z][a-z0-9_]*): 'p-value' -> 'p_value'."""
    key = _LABEL_KEY.sub("_", label.lower())
    return key if key[:1].isalpha() else f"l_{key}"


def metric_filter(namespace: str, name: str, model: str, **labels: str) -> str:
    """The monitoring filter selecting one shipyard metric of one model (and optional labels)."""
    terms = [f'metric.type = "{metric_type(namespace, name)}"', f'resource.type = "{RESOURCE_TYPE}"',
             f'metric.label.{MODEL_LABEL} = "{model}"']
    terms += [f'metric.label.{label_key(k)} = "{v}"' for k, v in sorted(labels.items())]
    return " AND ".join(terms)


#: The drift alert: the verdict's maximum over five minutes reaches 1; missing data keeps the incident as it is,
#: so one drift episode is one incident: one notification, one retraining.
DRIFT_ALERT: dict[str, Any] = {
    "comparison": "COMPARISON_GE",
    "thresholdValue": 1.0,
    "duration": "0s",
    "evaluationMissingData": "EVALUATION_MISSING_DATA_NO_OP",
    "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_MAX",
                      "crossSeriesReducer": "REDUCE_MAX", "groupByFields": [f"metric.label.{MODEL_LABEL}"]}],
}


def drift_alert_condition(namespace: str, model: str) -> dict[str, Any]:
    """The drift alert policy's condition for `model` (the program declares exactly this)."""
    return {"displayName": f"{model}: retraining warranted",
            "conditionThreshold": {**DRIFT_ALERT, "filter": metric_filter(namespace, VERDICT_METRIC, model)}}


def quality_alert_condition(namespace: str, model: str, metric: str, bound: float) -> dict[str, Any]:
    """A quality bound's alert condition: below a higher-is-better metric's floor, above a lower-is-better one's
    (the direction from `pipelines.catalog.METRICS`, the one table the gates and every target read)."""
    higher = higher_is_better(metric)
    return {"displayName": f"{model}: {metric} crossed {bound}", "conditionThreshold": {
        **DRIFT_ALERT, "comparison": "COMPARISON_LT" if higher else "COMPARISON_GT", "thresholdValue": bound,
        "filter": metric_filter(namespace, QUALITY_METRIC, model, metric=metric),
        "aggregations": [{**DRIFT_ALERT["aggregations"][0],
                          "perSeriesAligner": "ALIGN_MIN" if higher else "ALIGN_MAX",
                          "crossSeriesReducer": "REDUCE_MIN" if higher else "REDUCE_MAX"}]}}


def data_quality_alert_condition(namespace: str, model: str) -> dict[str, Any]:
    """The data-quality alert's condition: some column of the window has problems (it notifies, never retrains)."""
    return {"displayName": f"{model}: data-quality problems", "conditionThreshold": {
        **DRIFT_ALERT, "comparison": "COMPARISON_GT", "thresholdValue": 0.0,
        "filter": metric_filter(namespace, DATA_QUALITY_METRIC, model)}}


def time_series(metrics: Iterable[Metric], *, project: str, namespace: str, model: str, version: str,
                when: dt.datetime) -> list[dict[str, Any]]:
    """CreateTimeSeries entries for a monitoring run: one point per metric, labelled with model and version.

    Non-finite values are dropped (Cloud Monitoring refuses NaN and infinities).
    """
    end = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    series = []
    for metric in metrics:
        value = float(metric.value)
        if not math.isfinite(value):
            continue
        labels = {label_key(k): str(v)[:1024] for k, v in sorted(metric.labels.items()) if str(v) != ""}
        labels.update({MODEL_LABEL: model, VERSION_LABEL: str(version)})
        series.append({"metric": {"type": metric_type(namespace, metric.name), "labels": labels},
                       "resource": {"type": RESOURCE_TYPE, "labels": {"project_id": project}},
                       "metricKind": "GAUGE", "valueType": "DOUBLE",
                       "points": [{"interval": {"endTime": end}, "value": {"doubleValue": value}}]})
    return series


def batched(items: Sequence[Any], size: int = TIME_SERIES_BATCH) -> Iterator[Sequence[Any]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def authorized_session() -> Any:
    """A requests session carrying the environment's Google credentials (cloud-platform scope)."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=[SCOPE])
    return AuthorizedSession(credentials)


def _endpoint(variable: str, default: str) -> str:
    return os.environ.get(variable, default).rstrip("/")


def _post(session: Any, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = session.post(url, json=body, timeout=30)
    if response.status_code >= 400:
        raise RuntimeError(f"POST {url}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else {}


class CloudMonitoringSink:
    """Publishes a monitoring run's metrics to Cloud Monitoring (`cloud-monitoring:<project>/<namespace>`)."""

    def __init__(self, target: str | None = None, *, session: Any = None) -> None:
        project, _, namespace = (target or "").partition("/")
        if not project or not namespace:
            raise ValueError("the cloud-monitoring sink needs 'cloud-monitoring:<project>/<namespace>'")
        self.project, self.namespace = project, namespace
        self._session = session

    def emit(self, report_metrics: Iterable[Metric], *, model: str, version: str) -> None:
        """Write the metrics as time series, at most 200 per call."""
        series = time_series(report_metrics, project=self.project, namespace=self.namespace, model=model,
                             version=version, when=dt.datetime.now(dt.UTC))
        session = self._session or authorized_session()
        endpoint = _endpoint("SHIPYARD_GCP_MONITORING_ENDPOINT", MONITORING_ENDPOINT)
        url = f"{endpoint}/v3/projects/{self.project}/timeSeries"
        for batch in batched(series):
            _post(session, url, {"timeSeries": list(batch)})


def execution_request(reason: str, model: str) -> dict[str, Any]:
    """The Workflows CreateExecution body that (re)trains `model` for `reason`; Cloud Scheduler sends it too."""
    return {"argument": json.dumps({"reason": reason[:1024] or "manual", "model": model}, sort_keys=True),
            "callLogLevel": "LOG_ERRORS_ONLY"}


class WorkflowsTrigger:
    """Starts the model's training workflow (`gcp-workflow:projects/<p>/locations/<r>/workflows/<w>`)."""

    def __init__(self, target: str = "", *, session: Any = None) -> None:
        if not _WORKFLOW.match(target):
            raise ValueError("the gcp-workflow trigger needs 'gcp-workflow:projects/<p>/locations/<r>/workflows/<w>'")
        self.target = target
        self._session = session

    def start(self, reason: str, config: RunConfig) -> str:
        """Start an execution; returns `gcp-workflow:<execution name>`."""
        url = f"{_endpoint('SHIPYARD_GCP_WORKFLOWS_ENDPOINT', WORKFLOWS_ENDPOINT)}/v1/{self.target}/executions"
        response = _post(self._session or authorized_session(), url, execution_request(reason, config.model_name))
        return f"gcp-workflow:{response['name']}"
