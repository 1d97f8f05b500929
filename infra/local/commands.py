"""`shipyard up | down | status | predict | drift` on a local stack (the handlers named in `infra.cli`)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from infra.local import layout as lay
from infra.local import procs
from infra.local.platform import LocalPlatform, PlatformError, last_drift
from infra.local.state import State
from infra.local.ui import Reporter, table

#: Rows per request when `drift` replays traffic.
TRAFFIC_CHUNK = 200


def open_platform(args: argparse.Namespace) -> LocalPlatform:
    """The local platform of the stack named by `--stack`/`--config`; PlatformError if it is not a local one."""
    from infra.stackfile import find_project_dir, load_stack

    project = find_project_dir()
    loaded = load_stack(args.stack, config_file=args.config, project_dir=project)
    if loaded.spec.target != "local":
        raise PlatformError(f"stack {loaded.stack!r} targets {loaded.spec.target!r}; `shipyard {args.command}` runs "
                            f"local stacks only (deploy the others with `pulumi up --stack {loaded.stack}`)")
    layout = lay.Layout(lay.state_dir(project, loaded.stack))
    return LocalPlatform(project, loaded.stack, loaded.spec, layout, Reporter.for_args(getattr(args, "json", False)))


def _run(args: argparse.Namespace, body: Any) -> int:
    try:
        return body()
    except PlatformError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": str(exc)}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1


def _emit(args: argparse.Namespace, platform: LocalPlatform, document: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps({"ok": True, **document, "steps": platform.reporter.as_json()}, indent=2, default=str))


def example_request(platform: LocalPlatform, name: str, rows: int = 5) -> Path | None:
    """A small CSV of rows shaped like a demo model's traffic, written once under the state directory."""
    from pipelines.demo import demo_traffic, is_demo

    uri = platform.model(name).pipeline.dataset_uri
    if not is_demo(uri):
        return None
    path = platform.layout.root / "examples" / f"{name}.csv"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        demo_traffic(uri, rows=rows).to_csv(path, index=False)
    return path


def up(args: argparse.Namespace) -> int:
    """Bring the local platform up (idempotent), then print where everything is."""
    def body() -> int:
        platform = open_platform(args)
        result = platform.up()
        _emit(args, platform, result)
        if not args.json:
            if not result["changed"]:
                platform.reporter.note("nothing to change: every process is running and healthy")
            rows = [["registry", result["tracking_uri"], "", ""]]
            rows += [[f"model {name}", url, f"v{result['versions'][name]}", "POST JSON or CSV"]
                     for name, url in result["endpoints"].items()]
            table(f"shipyard local platform ({platform.stack})", ["component", "url", "version", ""], rows)
            first = next(iter(result["endpoints"]))
            example = example_request(platform, first) or Path("FILE.csv")
            print(f"\nTry it:  shipyard predict --stack {platform.stack} --model {first} {example}\n"
                  f"Drift:   shipyard drift --stack {platform.stack} --model {first} --shift 1.0\n"
                  f"State and logs: {result['state_dir']}")
        return 0
    return _run(args, body)


def down(args: argparse.Namespace) -> int:
    """Stop every process of the local platform; `--purge` also deletes its state."""
    def body() -> int:
        platform = open_platform(args)
        result = platform.down(args.purge)
        _emit(args, platform, result)
        if not args.json:
            kept = "state deleted" if args.purge else f"registry data kept in {result['state_dir']}"
            print(f"stopped {len(result['stopped'])} process(es); {kept}")
        return 0
    return _run(args, body)


def status(args: argparse.Namespace) -> int:
    """What runs, where, which version serves, and the last drift result."""
    def body() -> int:
        platform = open_platform(args)
        result = platform.status()
        _emit(args, platform, result)
        if not args.json and not result["running"]:
            print(f"the local platform of stack {platform.stack!r} is not running; start it with "
                  f"`shipyard up --stack {platform.stack}`")
        elif not args.json:
            rows = [[name, "running" if p["alive"] else "stopped", str(p["pid"]), p["url"] or ""]
                    for name, p in result["processes"].items()]
            table(f"processes ({platform.stack})", ["process", "state", "pid", "url"], rows)
            rows = []
            for name, m in result["models"].items():
                drift = m["last_drift"]
                seen = "never monitored" if drift is None else (
                    f"{drift['severity']} ({', '.join(drift['drifted_features']) or 'no feature'} drifted) "
                    f"at {drift['generated_at']}")
                rows.append([name, m["endpoint"] or "", f"v{m['version']}" if m["version"] else "-", seen])
            table("models", ["model", "endpoint", "serving", "last drift check"], rows)
        return 0
    return _run(args, body)


def request_body(path: Path) -> tuple[bytes, str]:
    """A file as a scoring request: CSV as is; JSON as is when it names a payload format, else a list of
    records becomes `dataframe_records` and an object of columns becomes `inputs`."""
    if not path.is_file():
        raise PlatformError(f"no such file: {path}")
    data = path.read_bytes()
    if path.suffix.lower() == ".csv":
        return data, "text/csv"
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise PlatformError(f"{path} is neither CSV (by its name) nor valid JSON: {exc}") from None
    formats = ("dataframe_split", "dataframe_records", "instances", "inputs")
    if isinstance(document, dict) and any(key in document for key in formats):
        return data, "application/json"
    if isinstance(document, list):
        return json.dumps({"dataframe_records": document}).encode(), "application/json"
    if isinstance(document, dict):
        return json.dumps({"inputs": document}).encode(), "application/json"
    raise PlatformError(f"{path}: expected a JSON object or a list of records")


def endpoint(platform: LocalPlatform, name: str) -> str:
    """The base URL of a model's running server; PlatformError when the model or the platform is not there."""
    model = platform.model(name)
    state = State.load(platform.layout.state_file)
    process = lay.serving_process(model.name)
    record = state.processes.get(process)
    if record is None or not procs.is_alive(record):
        raise PlatformError(f"{model.name}'s server is not running; start the platform with "
                            f"`shipyard up --stack {platform.stack}`")
    return lay.url(state.ports[process])


def _post(url: str, body: bytes, content_type: str, timeout: float = 30.0) -> tuple[int, Any]:
    status, raw = procs.http_status(url, timeout, "POST", body, {"Content-Type": content_type, **lay.auth_headers()})
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


def predict(args: argparse.Namespace) -> int:
    """Send a CSV/JSON file to a model's endpoint and print the predictions."""
    def body() -> int:
        platform = open_platform(args)
        base = endpoint(platform, args.model)
        data, content_type = request_body(args.file)
        status, answer = _post(f"{base}/invocations", data, content_type)
        if status != 200:
            message = answer.get("message") if isinstance(answer, dict) else answer
            raise PlatformError(f"{args.model} answered {status or 'nothing'}: {message}")
        if args.json:
            print(json.dumps(answer))
        else:
            for value in answer["predictions"]:
                print(value)
        return 0
    return _run(args, body)


def traffic_requests(frame: Any, chunk: int = TRAFFIC_CHUNK) -> list[bytes]:
    """A frame as `dataframe_split` request bodies of at most `chunk` rows (missing values as null)."""
    columns = [str(c) for c in frame.columns]
    bodies = []
    for start in range(0, len(frame), chunk):
        rows = frame.iloc[start:start + chunk].to_numpy(dtype=object).tolist()
        rows = [[None if isinstance(v, float) and math.isnan(v) else v for v in row] for row in rows]
        bodies.append(json.dumps({"dataframe_split": {"columns": columns, "data": rows}}).encode())
    return bodies


def drift(args: argparse.Namespace) -> int:
    """Send shifted demo traffic to a model, run its monitor now, and say what happened."""
    def body() -> int:
        from pipelines.demo import demo_traffic, is_demo

        platform = open_platform(args)
        model = platform.model(args.model)
        base = endpoint(platform, model.name)
        if not is_demo(model.pipeline.dataset_uri):
            raise PlatformError(f"{model.name} trains on {model.pipeline.dataset_uri}; simulated traffic needs a "
                                f"demo:// dataset")
        before = _post(f"{base}/-/reload", b"", "application/json")[1] or {}
        with platform.reporter.step(f"Send {args.rows} rows (shift {args.shift} sd, prior {args.prior})") as step:
            frame = demo_traffic(model.pipeline.dataset_uri, rows=args.rows, shift=args.shift, prior=args.prior)
            failed = sum(_post(f"{base}/invocations", b, "application/json")[0] != 200
                         for b in traffic_requests(frame))
            if failed:
                log_path = platform.layout.log(lay.serving_process(model.name))
                raise PlatformError(f"{failed} request(s) failed; see {log_path}")
            step.done(f"{len(frame)} rows predicted by v{before.get('version')}")
        with platform.reporter.step("Write the inference log") as step:
            status, flushed = _post(f"{base}/-/flush", b"", "application/json")
            if status != 200:
                raise PlatformError(f"flushing the inference log failed ({status}): {flushed}")
            step.done(f"{flushed['rows_written']} rows")
        with platform.reporter.step(f"Monitor {model.name} now (retrains inline when warranted)") as step:
            result = platform.run_step("monitor", model, platform.spec.training.time_limit_minutes * 60)
            report = last_drift(platform.layout, model)
            if result.returncode not in (0, 3) or report is None:
                log_path = platform.layout.log(f"monitor-{model.name}")
                raise PlatformError(f"the monitor failed (exit {result.returncode}); last lines of {log_path}:\n"
                                    f"{procs.log_tail(log_path)}")
            step.done(f"{report['severity']} drift; retraining "
                      f"{'started: ' + str(report['retrain_started']) if report['retrain_started'] else 'not started'}")
        with platform.reporter.step("Serving") as step:
            after = _post(f"{base}/-/reload", b"", "application/json")[1] or {}
            swapped = after.get("version") != before.get("version")
            step.done(f"v{after.get('version')}" + (" (the new champion, swapped in)" if swapped else ""))
        document = {"model": model.name, "rows_sent": len(frame), "drift": report,
                    "version_before": before.get("version"), "version_after": after.get("version")}
        _emit(args, platform, document)
        if not args.json:
            features = ", ".join(report["drifted_features"]) or "none"
            print(f"drift: {'detected' if report['drifted'] else 'not detected'} ({report['severity']}; drifted "
                  f"features: {features})\nretraining: {report['retrain_started'] or 'not started'}"
                  f"\nserving: v{document['version_before']} -> v{document['version_after']}")
        return 0
    return _run(args, body)
