"""The run configuration a target hands to the pipelines: one JSON document per model.

This is the contract between `infra` (which writes it into a ConfigMap, an S3 object, a local file)
and `pipelines` (which reads it with `pipelines.config.load_config`): the document is a
`pipelines.config.RunConfig`, built here from the spec's sections (themselves `pipelines.contract`
models), so what infra writes is exactly what the pipelines read. Pure: no Pulumi, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from infra.spec import ModelSpec, PlatformSpec
from pipelines.config import RunConfig
from pipelines.contract import MonitoringSettings


def pipeline_config(
    spec: PlatformSpec,
    model: ModelSpec,
    *,
    tracking_uri: str,
    inference_log_uri: str,
    reports_uri: str,
    sinks: list[str],
    retrain: str,
) -> dict[str, Any]:
    """The run configuration of `model` on a platform.

    - `tracking_uri`: the MLflow tracking server the steps log to.
    - `inference_log_uri`: the prefix (path or object-store URI) where serving writes inference logs
      (Parquet files: the feature columns, `prediction`, `_timestamp`, `_model_version`) and where
      `monitor` reads its window.
    - `reports_uri`: where `monitor` writes its JSON and HTML drift reports.
    - `sinks`: where drift metrics go: `stdout`, `prometheus:<file>`, `cloudwatch:<namespace>`,
      `cloud-monitoring:<project>/<namespace>`.
    - `retrain`: how `monitor` starts retraining: `inline` (run it in-process), `kubernetes-job:<namespace>/<cronjob>`,
      `sagemaker-pipeline:<name>`, `gcp-workflow:projects/<p>/locations/<r>/workflows/<w>`, or `none`.
    """
    config = RunConfig(
        **model.pipeline.model_dump(),
        platform=spec.name,
        environment=spec.environment,
        model_name=model.registered_model,
        alias=model.serving.alias,
        experiment=f"{spec.name}/{model.name}",
        tracking_uri=tracking_uri,
        monitoring=MonitoringSettings(**model.monitoring.model_dump(include=set(MonitoringSettings.model_fields))),
        inference_log_uri=inference_log_uri,
        reports_uri=reports_uri,
        sinks=list(sinks),
        retrain=retrain,
        promotion=model.promotion,
    )
    return config.to_dict()


def pipeline_config_text(spec: PlatformSpec, model: ModelSpec, **where: Any) -> str:
    """`pipeline_config(spec, model, **where)` as stable JSON text (sorted keys): the same spec, the same bytes."""
    return json.dumps(pipeline_config(spec, model, **where), sort_keys=True, indent=2) + "\n"


def content_key(prefix: str, name: str, text: str) -> str:
    """`<prefix>/<sha256[:16] of text>/<name>`: an object key that changes exactly when the content does."""
    return f"{prefix}/{hashlib.sha256(text.encode()).hexdigest()[:16]}/{name}"
