"""Cloud Monitoring dashboards of the platform, as pure functions of the spec (JSON the API takes as is).

Each model gets a row of charts: the monitor's verdict and drift flags, feature and prior PSI, quality,
and its Cloud Run service's request count and latency. The metric filters come from
`pipelines.adapters.gcp`, the module that writes the metrics.
"""

from __future__ import annotations

import json
from typing import Any

from infra.spec import ModelSpec, PlatformSpec
from infra.targets.gcp.names import gcp_name
from pipelines.adapters import gcp as adapter

ALIGNMENT = "300s"


def namespace(spec: PlatformSpec) -> str:
    """The platform's metric namespace inside the project: its prefix."""
    return spec.prefix


def metric_type(spec: PlatformSpec, metric: str) -> str:
    """The Cloud Monitoring type of one of the platform's metrics."""
    return adapter.metric_type(namespace(spec), metric)


def service_name(spec: PlatformSpec, model: ModelSpec) -> str:
    """The Cloud Run service serving `model` (stable: it is part of the endpoint's URL)."""
    return gcp_name(spec.prefix, model.name, kind="run_service")


def _chart(title: str, filters: list[str], *, aligner: str = "ALIGN_MAX", threshold: float | None = None,
           group_by: tuple[str, ...] = ()) -> dict[str, Any]:
    aggregation: dict[str, Any] = {"alignmentPeriod": ALIGNMENT, "perSeriesAligner": aligner}
    if group_by:
        aggregation.update(crossSeriesReducer="REDUCE_MAX", groupByFields=list(group_by))
    chart: dict[str, Any] = {"title": title, "xyChart": {"dataSets": [
        {"plotType": "LINE", "timeSeriesQuery": {"timeSeriesFilter": {"filter": f, "aggregation": aggregation}}}
        for f in filters]}}
    if threshold is not None:
        chart["xyChart"]["thresholds"] = [{"value": threshold, "label": "threshold"}]
    return chart


def model_tiles(spec: PlatformSpec, model: ModelSpec, y: int = 0) -> list[dict[str, Any]]:
    """One model's tiles (6 charts, 2 per row of height 4)."""
    ns, name = namespace(spec), model.registered_model
    service = f'resource.type = "cloud_run_revision" AND resource.label.service_name = "{service_name(spec, model)}"'
    charts = [
        _chart(f"{model.name}: monitor verdict", [adapter.metric_filter(ns, m, name) for m in (
            adapter.VERDICT_METRIC, "shipyard_drift_covariate", "shipyard_drift_prior")]),
        _chart(f"{model.name}: feature PSI", [adapter.metric_filter(ns, "shipyard_drift_feature_psi", name)],
               threshold=model.monitoring.covariate_threshold, group_by=("metric.label.feature",)),
        _chart(f"{model.name}: prior PSI", [adapter.metric_filter(ns, "shipyard_drift_prior_psi", name)],
               threshold=model.monitoring.prior_threshold, group_by=("metric.label.distribution",)),
        _chart(f"{model.name}: quality", [adapter.metric_filter(ns, adapter.QUALITY_METRIC, name)],
               aligner="ALIGN_MIN", group_by=("metric.label.metric",)),
        _chart(f"{model.name}: requests", [f'metric.type = "run.googleapis.com/request_count" AND {service}'],
               aligner="ALIGN_RATE", group_by=("metric.label.response_code_class",)),
        _chart(f"{model.name}: latency p99 (ms)",
               [f'metric.type = "run.googleapis.com/request_latencies" AND {service}'],
               aligner="ALIGN_PERCENTILE_99"),
    ]
    return [{"xPos": 24 * (i % 2), "yPos": y + 4 * (i // 2), "width": 24, "height": 4, "widget": chart}
            for i, chart in enumerate(charts)]


def dashboard_json(spec: PlatformSpec, models: list[ModelSpec], title: str) -> str:
    """A dashboard of the given models, one block of tiles each."""
    tiles = [t for index, model in enumerate(models) for t in model_tiles(spec, model, y=index * 12)]
    return json.dumps({"displayName": gcp_name(spec.prefix, title, kind="display"),
                       "mosaicLayout": {"columns": 48, "tiles": tiles}}, sort_keys=True)


def dashboard_url(project: str, dashboard_id: str) -> str:
    """The console URL of a dashboard, from its id (`projects/<number>/dashboards/<id>`)."""
    return f"https://console.cloud.google.com/monitoring/dashboards/builder/{dashboard_id.rsplit('/', 1)[-1]}" \
           f"?project={project}"
