"""`python -m pipelines serve --config run.json [--host H] [--port P]`: run the model server.

The model, alias, tracking server and inference log come from the run configuration
(`pipelines.config.load_config`: `--config`, `$SHIPYARD_RUN_CONFIG`, `SHIPYARD_<KEY>`); flags override it,
and `--tracking-uri` with `--model-name` are enough without any configuration. One uvicorn worker, with
uvloop and httptools when installed. The API key, when used, comes only from the environment: the file named
by `$SHIPYARD_API_KEY_FILE` (a mounted Secret, as on Kubernetes) or `$SHIPYARD_API_KEY`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pipelines.config import ConfigError, load_config
from pipelines.contract import DEFAULT_ALIAS
from pipelines.serving.app import ModelServer, Settings, create_app

API_KEY_ENV = "SHIPYARD_API_KEY"
#: Names a file holding the API key (a mounted Secret); wins over `API_KEY_ENV`.
API_KEY_FILE_ENV = "SHIPYARD_API_KEY_FILE"

#: Environment defaults of the serving process. The registry is the trust boundary: the server loads the
#: (skops/pickle) models its own platform registered. Registry calls fail fast instead of retrying for minutes.
PROCESS_DEFAULTS = {
    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def build_parser() -> argparse.ArgumentParser:
    """The server's command line."""
    p = argparse.ArgumentParser(prog="python -m pipelines serve", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="run configuration (path or URI); default $SHIPYARD_RUN_CONFIG")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--tracking-uri", help="MLflow tracking URI (overrides the configuration)")
    p.add_argument("--model-name", help="registered model name (overrides the configuration)")
    p.add_argument("--alias", help="registry alias to serve (default: the configuration's, else 'champion')")
    p.add_argument("--inference-log-uri", help="where inference logs go (overrides the configuration)")
    p.add_argument("--poll-seconds", type=float, default=5.0, help="how often the alias is checked")
    p.add_argument("--log-flush-rows", type=int, default=10_000, help="flush the inference log at this many rows")
    p.add_argument("--log-flush-seconds", type=float, default=10.0, help="... or this often")
    p.add_argument("--log-max-rows", type=int, default=None,
                   help="rows buffered at most while writes fail; the oldest are dropped (default: 10 flushes)")
    p.add_argument("--max-batch-rows", type=int, default=1024, help="rows per batched model call (labels only)")
    p.add_argument("--no-fast-path", action="store_true", help="always predict through mlflow.pyfunc")
    p.add_argument("--log-level", default="info")
    return p


def settings_from_args(args: argparse.Namespace, env: dict[str, str] | os._Environ[str] = os.environ) -> Settings:
    """Settings from the run configuration and the flags (flags win)."""
    tracking_uri, model_name, alias, log_uri = args.tracking_uri, args.model_name, args.alias, args.inference_log_uri
    if args.config or env.get("SHIPYARD_RUN_CONFIG") or not (tracking_uri and model_name):
        config = load_config(args.config, env)
        tracking_uri = tracking_uri or config.tracking_uri
        model_name = model_name or config.model_name
        alias = alias or config.alias
        log_uri = log_uri or config.inference_log_uri
    return Settings(
        tracking_uri=tracking_uri, model_name=model_name, alias=alias or DEFAULT_ALIAS, inference_log_uri=log_uri,
        poll_seconds=args.poll_seconds, log_flush_rows=args.log_flush_rows,
        log_flush_seconds=args.log_flush_seconds, log_max_rows=args.log_max_rows, max_batch_rows=args.max_batch_rows,
        fast_path=not args.no_fast_path, api_key=api_key(env),
    )


def api_key(env: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """The API key: the content of `$SHIPYARD_API_KEY_FILE` (stripped), else `$SHIPYARD_API_KEY`, else None.

    A key file that is named but unreadable or empty is a ConfigError: the server never falls back to no auth.
    """
    path = env.get(API_KEY_FILE_ENV)
    if path:
        from pipelines.config import ConfigError

        try:
            with open(path, encoding="utf-8") as handle:
                key = handle.read().strip()
        except OSError as exc:
            raise ConfigError(f"${API_KEY_FILE_ENV}", f"cannot read the API key from {path}: {exc}") from None
        if not key:
            raise ConfigError(f"${API_KEY_FILE_ENV}", f"{path} is empty")
        return key
    return env.get(API_KEY_ENV) or None


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; in-flight requests finish and the inference log is flushed on the way out."""
    args = build_parser().parse_args(argv)
    for key, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    logging.getLogger("pipelines.serving").info(
        "serving models:/%s@%s from %s on http://%s:%d (auth: %s)", settings.model_name, settings.alias,
        settings.tracking_uri, args.host, args.port, "api key" if settings.api_key else "none")
    uvicorn.run(create_app(ModelServer(settings)), host=args.host, port=args.port, workers=1,
                log_level="warning", access_log=False, timeout_graceful_shutdown=30)
    return 0
