"""Adaptive batching: requests that arrive while the model is busy are predicted together in one call.

Nothing waits for a batch to fill: the first request is predicted at once, and whatever arrived during
that call forms the next batch. At concurrency 1 this is plain per-request prediction; under load the
per-call overhead of a scikit-learn pipeline is shared by every request in the batch. A batch whose
call fails is retried request by request, so one bad request never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from pipelines.serving.model import ServedModel, rows_of

#: A request waiting for its batch: prepared columns, rows, the future of its predictions, its request id.
Pending = tuple[dict[str, Any], int, "asyncio.Future[Any]", str]


def concat_columns(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Column-wise concatenation of prepared requests (numpy arrays or lists of text)."""
    if len(parts) == 1:
        return parts[0]
    out: dict[str, Any] = {}
    for name in parts[0]:
        values = [p[name] for p in parts]
        if isinstance(values[0], np.ndarray):
            out[name] = np.concatenate(values)
        else:
            out[name] = [v for chunk in values for v in chunk]
    return out


class Batcher:
    """Predicts one model's requests on the event loop thread, batching concurrent ones."""

    def __init__(self, model: ServedModel, max_rows: int,
                 on_batch: Callable[[ServedModel, dict[str, Any], Any, int, list[tuple[str, int]]], None]):
        self.model = model
        self.max_rows = max_rows if model.batchable else 0
        self.on_batch = on_batch
        self._pending: deque[Pending] = deque()
        self._scheduled = False

    async def predict(self, columns: dict[str, Any], rows: int, request_id: str | None = None) -> Any:
        """Predictions for one prepared request (`request_id` is logged with its rows; a fresh one when None)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((columns, rows, future, request_id or uuid.uuid4().hex))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run_one_batch)
        return await future

    def _take(self) -> list[Pending]:
        batch = [self._pending.popleft()]
        total = batch[0][1]
        while self._pending and total + self._pending[0][1] <= self.max_rows and \
                set(self._pending[0][0]) == set(batch[0][0]):
            item = self._pending.popleft()
            batch.append(item)
            total += item[1]
        return batch

    def _run_one_batch(self) -> None:
        batch = self._take()
        if self._pending:
            asyncio.get_running_loop().call_soon(self._run_one_batch)
        else:
            self._scheduled = False
        live = [item for item in batch if not item[2].cancelled()]
        if not live:
            return
        columns = concat_columns([item[0] for item in live])
        try:
            predictions = self.model.predict(columns)
        except Exception as exc:
            if len(live) == 1:
                live[0][2].set_exception(exc)
                return
            for item in live:
                self._predict_alone(item)
            return
        self.on_batch(self.model, columns, predictions, sum(item[1] for item in live),
                      [(item[3], item[1]) for item in live])
        start = 0
        for _, rows, future, _ in live:
            future.set_result(rows_of(predictions, start, start + rows))
            start += rows

    def _predict_alone(self, item: Pending) -> None:
        columns, rows, future, request_id = item
        try:
            predictions = self.model.predict(columns)
        except Exception as exc:
            future.set_exception(exc)
            return
        self.on_batch(self.model, columns, predictions, rows, [(request_id, rows)])
        future.set_result(predictions)
