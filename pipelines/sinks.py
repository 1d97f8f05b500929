"""Where monitoring metrics go: pluggable sinks named by a spec string.

A spec is `name` or `name:argument` (the run configuration's `sinks` list): `stdout` (JSON lines),
`prometheus:<file>` (Prometheus text exposition format, written atomically by `prometheus_client`, for
node-exporter's textfile collector or any scraper of that file; `{model}` in the path is replaced by the model
name), and the cloud targets' sinks such as `cloudwatch:<namespace>`. `SINKS` maps each name to the
"module:Class" that implements it, imported only when used, so the cloud SDKs load only where they run. A sink
class is constructed with the argument after the colon (`Class(argument)`), or with no argument when the spec
has none.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, NamedTuple, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import GaugeMetricFamily

from pipelines.plugins import resolve


class Metric(NamedTuple):
    """One gauge reading: a metric name, its labels, its value."""

    name: str
    labels: dict[str, str]
    value: float


@runtime_checkable
class Sink(Protocol):
    """Receives the metrics of one monitoring run of one model version."""

    def emit(self, report_metrics: Iterable[Metric], *, model: str, version: str) -> None:
        """Send the metrics, labelled with the model and its version."""


#: Sink name -> "module:Class"; imported on first use.
SINKS: dict[str, str] = {
    "stdout": "pipelines.sinks:StdoutSink",
    "prometheus": "pipelines.sinks:PrometheusFileSink",
    "cloudwatch": "pipelines.adapters.aws:CloudWatchSink",
    "cloud-monitoring": "pipelines.adapters.gcp:CloudMonitoringSink",
    "azure-monitor": "pipelines.adapters.azure:AzureMonitorSink",
}


def _labelled(metric: Metric, model: str, version: str) -> dict[str, str]:
    return {"model": model, "version": str(version), **{key: str(value) for key, value in metric.labels.items()}}


class StdoutSink:
    """Writes one JSON object per metric and line: {"metric", "labels", "value"} (NaN and infinities as null)."""

    def __init__(self, argument: str | None = None, *, stream: IO[str] | None = None) -> None:
        if argument:
            raise ValueError(f"the stdout sink takes no argument, got {argument!r}")
        self._stream = stream

    def emit(self, report_metrics: Iterable[Metric], *, model: str, version: str) -> None:
        """Write the metrics as JSON lines to the stream (standard output by default)."""
        stream = self._stream or sys.stdout
        for metric in report_metrics:
            value = float(metric.value)
            record = {
                "metric": metric.name,
                "labels": _labelled(metric, model, version),
                "value": value if math.isfinite(value) else None,
            }
            stream.write(json.dumps(record, sort_keys=True) + "\n")
        stream.flush()


#: Names the textfile collector and every Prometheus parse (prometheus_client would escape others silently).
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class _Snapshot:
    """A prometheus_client collector of one set of readings: every metric name a gauge family."""

    def __init__(self, report_metrics: Iterable[Metric], *, model: str, version: str) -> None:
        self.families: dict[str, tuple[list[str], GaugeMetricFamily]] = {}
        for metric in report_metrics:
            if not _NAME.match(metric.name):
                raise ValueError(f"invalid Prometheus metric name {metric.name!r}")
            labels = _labelled(metric, model, version)
            bad = [key for key in labels if not _LABEL.match(key)]
            if bad:
                raise ValueError(f"invalid Prometheus label names {bad} on {metric.name}")
            if metric.name not in self.families:
                family = GaugeMetricFamily(metric.name, metric.name, labels=list(labels))
                self.families[metric.name] = (list(labels), family)
            names, family = self.families[metric.name]
            if sorted(labels) != sorted(names):
                raise ValueError(f"{metric.name}: label names {sorted(labels)} differ from {sorted(names)}")
            family.add_metric([labels[name] for name in names], float(metric.value))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """The gauge families, in first-seen order."""
        return iter(family for _, family in self.families.values())


def prometheus_text(report_metrics: Iterable[Metric], *, model: str, version: str) -> str:
    """The metrics in Prometheus text exposition format (every metric a gauge, grouped by name)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(report_metrics, model=model, version=version))
    return generate_latest(registry).decode()


class PrometheusFileSink:
    """Writes the latest metrics of a model to a file in Prometheus text format, replacing it atomically.

    `prometheus_client.write_to_textfile` writes beside the final name and renames over it, so a scraper
    (node-exporter's textfile collector reads `*.prom` files) never sees half a file. `{model}` in the path
    becomes the model name.
    """

    def __init__(self, path: str | None = None) -> None:
        if not path:
            raise ValueError("the prometheus sink needs a file: 'prometheus:<file>'")
        self.path = path

    def emit(self, report_metrics: Iterable[Metric], *, model: str, version: str) -> None:
        """Replace the file with these metrics."""
        target = Path(self.path.replace("{model}", model))
        target.parent.mkdir(parents=True, exist_ok=True)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(report_metrics, model=model, version=version))
        write_to_textfile(str(target), registry)
        target.chmod(0o644)


def get_sink(spec: str) -> Sink:
    """The sink a spec names (`stdout`, `prometheus:<file>`, `cloudwatch:<namespace>`, ...)."""
    name, colon, argument = spec.partition(":")
    if name not in SINKS:
        raise ValueError(f"unknown sink {name!r} in {spec!r}; known sinks: {sorted(SINKS)}")
    try:
        cls = resolve(SINKS[name])
    except ImportError as error:
        raise ValueError(f"sink {name!r} is not available here ({SINKS[name]}: {error})") from error
    return cls(argument) if colon else cls()
