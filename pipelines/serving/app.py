"""The ASGI app: MLflow's scoring protocol, health, Prometheus metrics, hot swap and the inference log.

Routes: `POST /invocations` (and `/models/<name>/invocations`), `GET /ping`, `GET /health`, `GET /metrics`,
`POST /-/reload` (check the alias now), `POST /-/flush` (write the inference log now). With an API key set,
every POST needs `Authorization: Bearer <key>` or `X-API-Key: <key>`; probes and metrics stay open.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipelines.serving import payload as payload_mod
from pipelines.serving.batching import Batcher
from pipelines.serving.inference_log import InferenceLog
from pipelines.serving.metrics import Metrics
from pipelines.serving.model import ServedModel, jsonable, load_version, resolve_version
from pipelines.serving.payload import PayloadError

log = logging.getLogger("pipelines.serving")

#: Largest request body accepted, in bytes.
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What the server serves and how."""

    tracking_uri: str
    model_name: str
    alias: str = "champion"
    inference_log_uri: str | None = None
    poll_seconds: float = 5.0
    log_flush_rows: int = 10_000
    log_flush_seconds: float = 10.0
    log_max_rows: int | None = None
    max_batch_rows: int = 1024
    fast_path: bool = True
    api_key: str | None = None


Loader = Callable[[Settings, str], ServedModel]
Resolver = Callable[[Settings], str | None]


def _connect(settings: Settings) -> object:
    """A registry client; the server's one registry is also made MLflow's default (`models:/` URIs use it)."""
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return mlflow.MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)


def registry_loader(settings: Settings, version: str) -> ServedModel:
    """Load `version` of the settings' model from the tracking server."""
    _connect(settings)
    return load_version(settings.tracking_uri, settings.model_name, version, settings.alias,
                        fast=settings.fast_path)


def registry_resolver(settings: Settings) -> str | None:
    """The version the settings' alias points at now."""
    return resolve_version(_connect(settings), settings.model_name, settings.alias)


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    code = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
            413: "REQUEST_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 503: "UNAVAILABLE"}.get(status, "ERROR")
    return _json({"error_code": code, "message": message}, status)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat(timespec="seconds")


class ModelServer:
    """The served model (swapped atomically), its batcher, the inference log and the metrics."""

    def __init__(self, settings: Settings, loader: Loader = registry_loader, resolver: Resolver = registry_resolver):
        self.settings = settings
        self.loader = loader
        self.resolver = resolver
        self.metrics = Metrics()
        self.inference_log = InferenceLog(
            settings.inference_log_uri, settings.log_flush_rows, settings.log_flush_seconds, settings.log_max_rows,
        ) if settings.inference_log_uri else None
        self.current: tuple[ServedModel, Batcher] | None = None
        self.last_error: str | None = None
        self._reload_lock = threading.Lock()

    # -- model lifecycle ---------------------------------------------------------------------------------------
    def refresh(self) -> dict[str, Any]:
        """Load and swap in the alias's version if it changed. Runs off the event loop; one at a time."""
        with self._reload_lock:
            previous = self.current[0].version if self.current else None
            try:
                version = self.resolver(self.settings)
                if version is None:
                    raise LookupError(f"models:/{self.settings.model_name}@{self.settings.alias} does not exist (yet)")
                if version == previous:
                    return {"changed": False, "version": version}
                model = self.loader(self.settings, version)
                rows = model.validate()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.metrics.reload_errors += 1
                log.warning("model refresh failed, still serving version %s: %s", previous, self.last_error)
                return {"changed": False, "version": previous, "error": self.last_error}
            self.install(model)
            self.last_error = None
            log.info("now serving %s version %s (was %s; validated on %d example rows)",
                     model.name, model.version, previous, rows)
            return {"changed": True, "version": model.version, "previous": previous}

    def install(self, model: ServedModel) -> None:
        """Swap in a loaded model: one assignment; requests already running finish on the old one."""
        replaced = self.current is not None
        self.current = (model, Batcher(model, self.settings.max_batch_rows, self._record))
        if replaced:
            self.metrics.swaps += 1

    def _record(self, model: ServedModel, columns: dict[str, Any], predictions: Any, rows: int,
                requests: list[tuple[str, int]]) -> None:
        self.metrics.batches += 1
        if self.inference_log is not None:
            self.inference_log.append(columns, predictions, rows, model.version, requests)

    async def poll(self) -> None:
        """Follow the alias: check it now and then every `poll_seconds`."""
        while True:
            await asyncio.to_thread(self.refresh)
            await asyncio.sleep(self.settings.poll_seconds)

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def authorized(self, request: Request) -> bool:
        """Whether the request carries the API key (always true when no key is set)."""
        key = self.settings.api_key
        if not key:
            return True
        given = request.headers.get("x-api-key")
        if given is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else ""
        return hmac.compare_digest(given.encode(), key.encode())

    async def invocations(self, request: Request) -> Response:
        """Score one request."""
        started = time.perf_counter()
        response, rows = await self._score(request)
        self.metrics.observe("invocations", response.status_code, time.perf_counter() - started, rows)
        return response

    async def _score(self, request: Request) -> tuple[Response, int]:
        if not self.authorized(request):
            return _error(401, "missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"), 0
        name = request.path_params.get("name")
        if name is not None and name != self.settings.model_name:
            return _error(404, f"unknown model {name!r}; this endpoint serves {self.settings.model_name!r}"), 0
        current = self.current
        if current is None:
            return _error(503, f"no model loaded yet: {self.last_error or 'loading'}"), 0
        model, batcher = current
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return _error(413, f"request body over {MAX_BODY_BYTES} bytes; split it"), 0
        body = await request.body()
        try:
            parsed = payload_mod.parse_body(body, request.headers.get("content-type"))
            columns = model.prepare(parsed)
            predictions = await batcher.predict(columns, parsed.rows, request.headers.get("x-request-id"))
        except PayloadError as exc:
            return _error(exc.status, exc.message), 0
        except Exception as exc:  # the model refused input that passed the signature (NaN, unseen values...)
            log.warning("model %s v%s rejected a request: %s: %s", model.name, model.version, type(exc).__name__, exc)
            return _error(400, f"the model could not predict this input: {type(exc).__name__}: {exc}"), 0
        return _json({"predictions": jsonable(predictions)}), parsed.rows

    async def ping(self, request: Request) -> Response:
        """Liveness/readiness: 200 once a model is loaded."""
        status = 200 if self.current else 503
        self.metrics.observe("ping", status, 0.0)
        return Response(b"\n" if status == 200 else b"no model loaded\n", status, media_type="text/plain")

    def health_document(self) -> dict[str, Any]:
        """What /health returns."""
        doc: dict[str, Any] = {"status": "ok" if self.current else "loading", "model_name": self.settings.model_name,
                               "alias": self.settings.alias, "last_error": self.last_error}
        if self.current:
            model = self.current[0]
            doc.update(version=model.version, run_id=model.run_id, flavor=model.flavor,
                       batching=model.batchable, loaded_at=_iso(model.loaded_at))
        if self.inference_log is not None:
            doc["inference_log"] = {"uri": self.inference_log.uri, "pending_rows": self.inference_log.pending,
                                    "rows_written": self.inference_log.rows_written,
                                    "rows_dropped": self.inference_log.dropped_rows}
        return doc

    async def health(self, request: Request) -> Response:
        """Model name, version, alias and load time (503 while no model is loaded)."""
        status = 200 if self.current else 503
        self.metrics.observe("health", status, 0.0)
        return _json(self.health_document(), status)

    async def prometheus(self, request: Request) -> Response:
        """Prometheus text exposition."""
        model = None
        if self.current:
            m = self.current[0]
            model = {"model": m.name, "version": m.version, "alias": m.alias, "flavor": m.flavor}
        state = {"pending": 0, "written": 0, "errors": 0, "dropped": 0}
        if self.inference_log is not None:
            state = {"pending": self.inference_log.pending, "written": self.inference_log.rows_written,
                     "errors": self.inference_log.errors, "dropped": self.inference_log.dropped_rows}
        self.metrics.observe("metrics", 200, 0.0)
        return Response(self.metrics.render(model, state), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def reload(self, request: Request) -> Response:
        """Check the alias now and swap if it moved."""
        if not self.authorized(request):
            return _error(401, "missing or wrong API key")
        return _json(await asyncio.to_thread(self.refresh))

    async def flush(self, request: Request) -> Response:
        """Write the buffered inference log now."""
        if not self.authorized(request):
            return _error(401, "missing or wrong API key")
        rows = await asyncio.to_thread(self.inference_log.flush) if self.inference_log else 0
        return _json({"rows_written": rows})

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Start the alias poller and the log flusher; on shutdown flush the log."""
        if self.inference_log is not None:
            self.inference_log.start()
        poller = asyncio.create_task(self.poll())
        try:
            yield
        finally:
            poller.cancel()
            if self.inference_log is not None:
                await asyncio.to_thread(self.inference_log.close)


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, f"no such path {request.url.path!r}; try POST /invocations, GET /ping, /health or /metrics")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _error(405, f"{request.method} is not allowed on {request.url.path}")


def create_app(server: ModelServer) -> Starlette:
    """The Starlette app of a ModelServer."""
    routes = [
        Route("/invocations", server.invocations, methods=["POST"]),
        Route("/models/{name}/invocations", server.invocations, methods=["POST"]),
        Route("/ping", server.ping, methods=["GET"]),
        Route("/health", server.health, methods=["GET"]),
        Route("/metrics", server.prometheus, methods=["GET"]),
        Route("/-/reload", server.reload, methods=["POST"]),
        Route("/-/flush", server.flush, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=server.lifespan,
                     exception_handlers={404: _not_found, 405: _not_allowed})
