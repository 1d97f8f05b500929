"""The inference log: each request's input rows and predictions, buffered and written as Parquet files.

Layout under the run config's `inference_log_uri` (any fsspec URI: a path, s3://, gs://, az://):
`<uri>/<YYYY-MM-DD>/<HHMMSS>-<writer>-<seq>.parquet`, columns = the model's input columns, `prediction`,
`_timestamp` (UTC), `_model_version`, and `_request_id` with `_request_row` (the request a row came in and its
position there: the client's `X-Request-ID` header, or a fresh id; the monitor drops repeated requests, such as
client retries or rows logged twice, before testing). Appending is cheap and done on the request path; encoding and
writing happen off it, when `flush_rows` rows are pending or every `flush_seconds`.

The buffer is bounded: rows of a failed write are kept for the next flush, but never more than `max_rows`
rows (or the newest request alone, when it is bigger) are held; past that the oldest requests' rows are
dropped and counted (`dropped_rows`, exported as
`shipyard_serving_inference_log_dropped_rows_total`), so a read-only or full volume costs log rows, not
the server's memory.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("pipelines.serving")


@dataclass
class Chunk:
    """One request's worth of rows."""

    columns: dict[str, Any]
    predictions: Any
    rows: int
    timestamp: float
    version: str
    requests: list[tuple[str, int]]


def chunks_to_table(chunks: list[Chunk]) -> pd.DataFrame:
    """Concatenate buffered chunks column by column (no per-request DataFrame is ever built)."""
    names: dict[str, None] = {}
    for chunk in chunks:
        names.update(dict.fromkeys(chunk.columns))
    data: dict[str, Any] = {}
    for name in names:
        parts = [_as_array(c.columns.get(name), c.rows) for c in chunks]
        data[name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
    data["prediction"] = np.concatenate([_prediction_array(c.predictions) for c in chunks])
    stamps = np.concatenate([np.full(c.rows, c.timestamp) for c in chunks])
    data["_timestamp"] = pd.to_datetime(stamps, unit="s", utc=True)
    data["_model_version"] = np.concatenate([np.full(c.rows, c.version, dtype=object) for c in chunks])
    requests = [request for c in chunks for request in c.requests]
    data["_request_id"] = np.repeat(np.array([r for r, _ in requests], dtype=object), [n for _, n in requests])
    data["_request_row"] = np.concatenate([np.arange(n, dtype=np.int64) for _, n in requests])
    return pd.DataFrame(data)


def _as_array(values: Any, rows: int) -> np.ndarray:
    if values is None:
        return np.full(rows, None, dtype=object)
    if isinstance(values, np.ndarray):
        return values
    return np.array(values, dtype=object)


def _prediction_array(predictions: Any) -> np.ndarray:
    """One value per row: scalars stay scalars, multi-output rows become lists."""
    if isinstance(predictions, pd.DataFrame):
        if predictions.shape[1] == 1:
            return predictions.iloc[:, 0].to_numpy()
        out = np.empty(len(predictions), dtype=object)
        out[:] = predictions.to_numpy().tolist()
        return out
    array = np.asarray(predictions)
    if array.ndim == 1:
        return array
    out = np.empty(len(array), dtype=object)
    out[:] = array.tolist()
    return out


def file_path(uri: str, when: float, writer: str, seq: int) -> str:
    """Where one flush goes: `<uri>/<YYYY-MM-DD>/<HHMMSS>-<writer>-<seq>.parquet`."""
    stamp = dt.datetime.fromtimestamp(when, tz=dt.UTC)
    return f"{uri.rstrip('/')}/{stamp:%Y-%m-%d}/{stamp:%H%M%S}-{writer}-{seq:06d}.parquet"


class InferenceLog:
    """A buffer of inference rows flushed to Parquet under `uri` by a background thread.

    At most `max_rows` rows are buffered (default: ten flushes' worth), or the newest request alone when it is
    bigger (a request is bounded by the server's body limit); the oldest requests' rows are dropped beyond that.
    """

    def __init__(self, uri: str, flush_rows: int = 10_000, flush_seconds: float = 10.0, max_rows: int | None = None):
        if max_rows is not None and max_rows < flush_rows:
            raise ValueError(f"max_rows ({max_rows}) must be at least flush_rows ({flush_rows})")
        self.uri = uri
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows if max_rows is not None else 10 * flush_rows
        self.writer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._seq = itertools.count()
        self._chunks: list[Chunk] = []
        self._pending = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.files_written = 0
        self.errors = 0
        self.dropped_rows = 0

    @property
    def pending(self) -> int:
        """Rows buffered and not written yet."""
        return self._pending

    def append(self, columns: dict[str, Any], predictions: Any, rows: int, version: str,
               requests: list[tuple[str, int]] | None = None) -> None:
        """Buffer one batch's rows (cheap: no copy, no encoding); `requests` are the (request id, rows) it holds,
        in order (one fresh request id for all rows when not given)."""
        with self._lock:
            self._chunks.append(Chunk(columns, predictions, rows, time.time(), version,
                                      requests or [(uuid.uuid4().hex, rows)]))
            self._pending += rows
            self._drop_oldest()
            full = self._pending >= self.flush_rows
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write everything buffered now, as one file; returns the rows written. Thread-safe."""
        with self._write_lock:
            with self._lock:
                chunks, self._chunks, self._pending = self._chunks, [], 0
            if not chunks:
                return 0
            try:
                self._write(chunks)
            except Exception:
                self.errors += 1
                with self._lock:
                    self._chunks[:0] = chunks
                    self._pending += sum(c.rows for c in chunks)
                    self._drop_oldest()
                log.exception("inference log: writing %d rows to %s failed; %d rows kept for the next flush "
                              "(at most %d), %d dropped so far", sum(c.rows for c in chunks), self.uri,
                              self._pending, self.max_rows, self.dropped_rows)
                return 0
            rows = sum(c.rows for c in chunks)
            self.rows_written += rows
            self.files_written += 1
            return rows

    def _drop_oldest(self) -> None:
        """Drop the oldest requests' rows until at most `max_rows` are buffered, keeping the newest request
        (the caller holds `_lock`)."""
        drop = 0
        while self._pending > self.max_rows and drop < len(self._chunks) - 1:
            self._pending -= self._chunks[drop].rows
            self.dropped_rows += self._chunks[drop].rows
            drop += 1
        del self._chunks[:drop]

    def _write(self, chunks: list[Chunk]) -> None:
        import fsspec
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(chunks_to_table(chunks), preserve_index=False)
        fs, path = fsspec.core.url_to_fs(file_path(self.uri, time.time(), self.writer, next(self._seq)))
        local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        if local:  # object stores publish a PUT whole; a local file appears only once complete
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        target = f"{path}.partial" if local else path
        with fs.open(target, "wb") as handle:
            pq.write_table(table, handle)
        if local:
            fs.mv(target, path)

    def start(self) -> None:
        """Start the background flusher."""
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()
