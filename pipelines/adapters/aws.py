"""AWS runtime adapters: CloudWatch metrics and alarms, SageMaker retraining.

Datasets, inference logs and reports on S3 need no adapter: `pipelines.storage` reads and writes every
object store through fsspec (s3fs here), the same code on every target.
- `CloudWatchSink` (`cloudwatch:<namespace>` in a run configuration's `sinks`): drift metrics as
  CloudWatch metrics, batched 1,000 per call.
- `drift_alarm_request`: the alarm on the monitor's verdict; the Pulumi program
  declares the same alarm from the same definition.
- `SageMakerPipelineTrigger` (`sagemaker-pipeline:<pipeline name>`): start retraining with the reason
  recorded as the execution's `Reason` parameter and description.

boto3 and s3fs are imported on first use. Endpoints and credentials come from the environment as the
SDKs read them (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID`, ...); MLflow's own S3
artifact client follows `MLFLOW_S3_ENDPOINT_URL`.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:

    from pipelines.config import RunConfig
    from pipelines.sinks import Metric

#: CloudWatch accepts at most this many metric data per PutMetricData call.
CLOUDWATCH_BATCH = 1000
MODEL_DIMENSION = "Model"
VERSION_DIMENSION = "Version"
#: The monitor's verdict: retraining is warranted (drift of major severity, or quality under its floor).
VERDICT_METRIC = "shipyard_retrain_warranted"
#: The SageMaker pipeline parameter recording why an execution started.
REASON_PARAMETER = "Reason"
#: The drift alarm on the verdict: one datum of 1 alarms; missing data keeps the state (one episode, one alarm).
DRIFT_ALARM: dict[str, Any] = {
    "MetricName": VERDICT_METRIC,
    "Statistic": "Maximum",
    "Period": 300,
    "EvaluationPeriods": 1,
    "Threshold": 1.0,
    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    "TreatMissingData": "ignore",
}


def client(service: str) -> Any:
    """A boto3 client for `service`, configured from the environment."""
    import boto3

    return boto3.client(service)


# ---------------------------------------------------------------------------------------------- CloudWatch


def dimension_name(label: str) -> str:
    """A metric label as a CloudWatch dimension name: 'feature' -> 'Feature', 'p_value' -> 'PValue'."""
    return "".join(part.capitalize() for part in label.split("_"))


def metric_datums(metrics: Iterable[Metric], *, model: str, version: str,
                  timestamp: dt.datetime) -> list[dict[str, Any]]:
    """CloudWatch metric data for a monitoring run: each metric twice, with and without `Version`.

    The versioned series (Model, Version, labels...) traces one model version; the version-free series
    (Model, labels...) is continuous across versions, which is what alarms and dashboards watch.
    Non-finite values are dropped (CloudWatch refuses NaN and infinities).
    """
    datums = []
    for metric in metrics:
        value = float(metric.value)
        if not math.isfinite(value):
            continue
        labels = [{"Name": dimension_name(k), "Value": str(v)[:1024]} for k, v in sorted(metric.labels.items())
                  if str(v) != ""]
        model_dim = {"Name": MODEL_DIMENSION, "Value": model}
        for extra in ([{"Name": VERSION_DIMENSION, "Value": str(version)}], []):
            datums.append({"MetricName": metric.name, "Dimensions": [model_dim, *extra, *labels],
                           "Timestamp": timestamp, "Value": value, "Unit": "None"})
    return datums


def batched(items: Sequence[Any], size: int = CLOUDWATCH_BATCH) -> Iterator[Sequence[Any]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


class CloudWatchSink:
    """Publishes a monitoring run's metrics to CloudWatch under a namespace (`cloudwatch:<namespace>`)."""

    def __init__(self, namespace: str | None = None, *, cloudwatch: Any = None) -> None:
        if not namespace:
            raise ValueError("the cloudwatch sink needs a namespace: 'cloudwatch:<namespace>'")
        self.namespace = namespace
        self._client = cloudwatch

    def emit(self, report_metrics: Iterable[Metric], *, model: str, version: str) -> None:
        """Put the metrics, at most 1,000 per call."""
        datums = metric_datums(report_metrics, model=model, version=version, timestamp=dt.datetime.now(dt.UTC))
        cloudwatch = self._client or client("cloudwatch")
        for batch in batched(datums):
            cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=list(batch))


def drift_alarm_request(name: str, *, namespace: str, model: str, actions: Sequence[str] = ()) -> dict[str, Any]:
    """The PutMetricAlarm request of a model's drift alarm (the same definition the Pulumi program declares)."""
    return {
        **DRIFT_ALARM,
        "AlarmName": name,
        "AlarmDescription": f"{model}: the monitor found drift (or quality loss) that warrants retraining",
        "Namespace": namespace,
        "Dimensions": [{"Name": MODEL_DIMENSION, "Value": model}],
        "AlarmActions": list(actions),
        "OKActions": list(actions),
    }


# --------------------------------------------------------------------------------------------- retraining


def start_request(pipeline: str, reason: str, model: str) -> dict[str, Any]:
    """The StartPipelineExecution request that retrains `model` for `reason` (recorded twice: parameter, text)."""
    return {
        "PipelineName": pipeline,
        "PipelineParameters": [{"Name": REASON_PARAMETER, "Value": reason[:1024] or "manual"}],
        "PipelineExecutionDescription": f"retrain {model}: {reason}"[:3072],
        "ClientRequestToken": uuid.uuid4().hex,
    }


class SageMakerPipelineTrigger:
    """Starts the model's SageMaker training pipeline (`sagemaker-pipeline:<pipeline name>`)."""

    def __init__(self, target: str = "", *, sagemaker: Any = None) -> None:
        if not target:
            raise ValueError("the sagemaker-pipeline trigger needs a pipeline name: 'sagemaker-pipeline:<name>'")
        self.target = target
        self._client = sagemaker

    def start(self, reason: str, config: RunConfig) -> str:
        """Start an execution; returns `sagemaker-pipeline:<execution ARN>`."""
        response = (self._client or client("sagemaker")).start_pipeline_execution(
            **start_request(self.target, reason, config.model_name))
        return f"sagemaker-pipeline:{response['PipelineExecutionArn']}"
