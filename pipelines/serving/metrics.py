"""Prometheus metrics of the model server, in the text exposition format (no client library needed)."""

from __future__ import annotations

import bisect
import threading
from collections import Counter

#: Latency histogram bucket bounds, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PREFIX = "shipyard_serving"


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Counters and a latency histogram, updated on the request path and rendered on /metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.bucket_counts = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.rows_predicted = 0
        self.batches = 0
        self.swaps = 0
        self.reload_errors = 0

    def observe(self, handler: str, status: int, seconds: float, rows: int = 0) -> None:
        """Record one finished request."""
        with self._lock:
            self.requests[(handler, status)] += 1
            if handler == "invocations":
                index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
                if index < len(self.bucket_counts):
                    self.bucket_counts[index] += 1
                self.latency_sum += seconds
                self.latency_count += 1
                self.rows_predicted += rows

    def render(self, model: dict[str, str] | None, log_state: dict[str, int]) -> str:
        """The exposition text. `model`: name/version/alias of the served model (None before the first load)."""
        with self._lock:
            lines = [
                f"# HELP {PREFIX}_requests_total Requests handled, by handler and HTTP status.",
                f"# TYPE {PREFIX}_requests_total counter",
            ]
            for (handler, status), count in sorted(self.requests.items()):
                lines.append(f"{PREFIX}_requests_total{_labels(handler=handler, status=str(status))} {count}")
            lines += [
                f"# HELP {PREFIX}_request_duration_seconds Latency of /invocations requests.",
                f"# TYPE {PREFIX}_request_duration_seconds histogram",
            ]
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, self.bucket_counts, strict=True):
                cumulative += count
                lines.append(f'{PREFIX}_request_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
            lines += [
                f'{PREFIX}_request_duration_seconds_bucket{{le="+Inf"}} {self.latency_count}',
                f"{PREFIX}_request_duration_seconds_sum {self.latency_sum:.6f}",
                f"{PREFIX}_request_duration_seconds_count {self.latency_count}",
            ]
            counters = {
                "rows_predicted_total": ("Rows predicted.", self.rows_predicted),
                "batches_total": ("Model calls (concurrent requests are batched).", self.batches),
                "model_swaps_total": ("Times a new model version replaced the served one.", self.swaps),
                "reload_errors_total": ("Failed attempts to load a new model version.", self.reload_errors),
                "inference_log_rows_total": ("Inference rows written to the log.", log_state.get("written", 0)),
                "inference_log_errors_total": ("Failed inference log writes.", log_state.get("errors", 0)),
                "inference_log_dropped_rows_total": ("Inference rows dropped, oldest first, because the buffer "
                                                     "was full while writes kept failing.",
                                                     log_state.get("dropped", 0)),
            }
            for name, (text, value) in counters.items():
                lines += [f"# HELP {PREFIX}_{name} {text}", f"# TYPE {PREFIX}_{name} counter",
                          f"{PREFIX}_{name} {value}"]
        lines += [
            f"# HELP {PREFIX}_inference_log_pending_rows Inference rows buffered, not written yet.",
            f"# TYPE {PREFIX}_inference_log_pending_rows gauge",
            f"{PREFIX}_inference_log_pending_rows {log_state.get('pending', 0)}",
            f"# HELP {PREFIX}_model_info The model version being served.",
            f"# TYPE {PREFIX}_model_info gauge",
        ]
        if model:
            lines.append(f"{PREFIX}_model_info{_labels(**model)} 1")
        return "\n".join(lines) + "\n"
