"""Serving benchmark: the local platform's model server beside `mlflow models serve`, in one run.

    python benchmarks/serving.py [--seconds 5]

On a copy of this project (so a developer's own state is untouched) it runs `shipyard up --stack local`
from a cold state and times it to the first successful prediction; serves the same champion with
`mlflow models serve --env-manager local`; drives both with one load generator running in a second
process (asyncio, keep-alive HTTP/1.1 on loopback) for single-row requests at concurrency 1 and 16 and for
1,000-row batches; checks that both answer identical predictions; then times one continuous-training loop
(`shipyard drift`: shifted traffic -> monitor -> retrain -> promote -> served) and sums the memory of the
platform's processes. It prints figures and ratios and never fails on a time.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

TARGETS = {"rps_ratio_c16": 5.0, "p99_ms_c1": 10.0, "up_seconds": 20.0, "loop_seconds": 30.0, "rss_mib": 1024.0}


# ---------------------------------------------------------------------------------------------- load generator

async def _worker(host: str, port: int, requests: list[bytes], deadline: float, limit: int,
                  latencies: list[float], failures: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while time.perf_counter() < deadline and len(latencies) + len(failures) < limit:
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if status_line.split()[1] == b"200":
                latencies.append(time.perf_counter() - started)
            else:
                failures.append(int(status_line.split()[1]))
    finally:
        writer.close()


def _request(host: str, port: int, body: bytes) -> bytes:
    head = (f"POST /invocations HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n").encode()
    return head + body


def run_load(url: str, bodies: list[bytes], concurrency: int, seconds: float, limit: int) -> dict[str, float]:
    """Drive `url` with `concurrency` keep-alive connections for `seconds` (or `limit` requests)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", int(parts.port or 80)
    requests = [_request(host, port, body) for body in bodies]
    latencies: list[float] = []
    failures: list[int] = []

    async def main() -> float:
        warm_deadline = time.perf_counter() + min(1.0, seconds / 5)
        await asyncio.gather(*(_worker(host, port, requests, warm_deadline, 10**9, [], [])
                               for _ in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(_worker(host, port, requests, started + seconds, limit, latencies, failures)
                               for _ in range(concurrency)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {"requests": len(latencies), "failures": len(failures), "rps": len(latencies) / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


# ---------------------------------------------------------------------------------------------- helpers

def _post(url: str, body: bytes, timeout: float = 60.0) -> tuple[int, bytes]:
    from infra.local.procs import http_status

    return http_status(url, timeout, "POST", body, {"Content-Type": "application/json"})


def _shipyard(project: Path, env: dict[str, str], *args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "infra.cli", *args, "--stack", "local", "--json"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"shipyard {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout)


def _memory_mib(pids: list[int]) -> tuple[float, float]:
    """Total RSS and PSS (MiB) of processes."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def _platform_pids(state_dir: Path) -> list[int]:
    from infra.local.procs import group_members
    from infra.local.state import State

    return [pid for record in State.load(state_dir / "state.json").processes.values()
            for pid in group_members(record.pid)]


def _bodies(rows: int, count: int, seed: int) -> list[bytes]:
    import math

    from pipelines.demo import demo_traffic

    frame = demo_traffic("demo://classification?rows=5000&seed=7", rows=rows * count, seed=seed)
    columns = [str(c) for c in frame.columns]
    data = [[None if isinstance(v, float) and math.isnan(v) else v for v in row]
            for row in frame.to_numpy(dtype=object).tolist()]
    return [json.dumps({"dataframe_split": {"columns": columns, "data": data[i * rows:(i + 1) * rows]}}).encode()
            for i in range(count)]


def _start_mlflow_serve(tracking_uri: str, model_uri: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "MLFLOW_TRACKING_URI": tracking_uri,
           "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    with open(log, "ab") as out:
        return subprocess.Popen([str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager",
                                 "local", "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _row(name: str, figures: dict[str, float]) -> str:
    return (f"  {name:<28} {figures['rps']:>9.0f} req/s   p50 {figures['p50_ms']:>7.2f} ms   "
            f"p99 {figures['p99_ms']:>7.2f} ms   ({figures['requests']} ok, {figures['failures']} failed)")


# ---------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    from infra.local.layout import copy_project
    from infra.local.procs import free_port, port_is_free, wait_until

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per scenario and server")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
    project = copy_project(PROJECT, work / "project")
    state_dir = project / ".shipyard" / "local" / "local"
    base = next(p for p in range(18500, 19500, 10) if port_is_free(p) and port_is_free(p + 1))
    env = {k: v for k, v in os.environ.items() if k != "SHIPYARD_STATE_DIR"}
    env["SHIPYARD_LOCAL_PORT_BASE"] = str(base)
    cpus = os.cpu_count()
    print(f"serving benchmark: {cpus} CPU(s), load average {os.getloadavg()[0]:.2f}, work dir {work}")

    mlflow_serve = None
    try:
        single = _bodies(1, 200, seed=4242)
        started = time.perf_counter()
        up = _shipyard(project, env, "up")
        url = up["endpoints"]["churn"]
        status, _ = _post(url, single[0])
        up_seconds = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"first prediction failed: {status}")
        print(f"\nshipyard up (cold state) to first prediction: {up_seconds:.1f} s "
              f"(target < {TARGETS['up_seconds']:.0f} s)")
        rss_up, pss_up = _memory_mib(_platform_pids(state_dir))

        started = time.perf_counter()
        drift = _shipyard(project, env, "drift", "--model", "churn", "--shift", "1.5", "--rows", "2000")
        loop_seconds = time.perf_counter() - started
        print(f"continuous-training loop (2,000 shifted rows -> monitor -> retrain -> promote -> served): "
              f"{loop_seconds:.1f} s (target < {TARGETS['loop_seconds']:.0f} s); drift detected: "
              f"{drift['drift']['drifted']}, retraining: {drift['drift']['retrain_started']}, "
              f"serving v{drift['version_before']} -> v{drift['version_after']}")
        rss_loop, pss_loop = _memory_mib(_platform_pids(state_dir))
        version = drift["version_after"]

        port = free_port()
        mlflow_serve = _start_mlflow_serve(up["tracking_uri"], f"models:/churn/{version}", port,
                                           work / "mlflow-serve.log")
        mlflow_url = f"http://127.0.0.1:{port}/invocations"
        if not wait_until(lambda: _post(mlflow_url.replace("/invocations", "/ping"), b"", 2)[0] in (200, 405), 180):
            raise SystemExit(f"mlflow models serve did not start; see {work / 'mlflow-serve.log'}")
        mlflow_rss, _ = _memory_mib([mlflow_serve.pid, *_children(mlflow_serve.pid)])

        batches = _bodies(1000, 3, seed=777)
        checked = [*single[:50], *batches]
        identical = all(json.loads(_post(url, b)[1]) == json.loads(_post(mlflow_url, b)[1]) for b in checked)
        print(f"\nboth serve churn v{version}; predictions identical on {len(checked)} requests "
              f"(50 single rows, 3 x 1,000 rows): {identical}")
        floor = _predict_floor(up["tracking_uri"], version, single[0])
        print(f"in-process floor, the model's own predict() on one row: p50 {floor[0]:.2f} ms, p99 {floor[1]:.2f} ms")

        scenarios = [("single row, concurrency 1", single, 1, 10**6),
                     ("single row, concurrency 16", single, 16, 10**6),
                     ("1,000-row batch, concurrency 1", batches, 1, 10**6)]
        results: dict[str, dict[str, dict[str, float]]] = {}
        with concurrent.futures.ProcessPoolExecutor(1) as client:
            for name, bodies, concurrency, limit in scenarios:
                results[name] = {}
                for server, target in (("mlflow models serve", mlflow_url), ("shipyard", url)):
                    results[name][server] = client.submit(run_load, target, bodies, concurrency, args.seconds,
                                                          limit).result()
        print(f"\nload: one client process, keep-alive HTTP/1.1, {args.seconds:.0f} s per scenario and server")
        for name, by_server in results.items():
            ratio = by_server["shipyard"]["rps"] / by_server["mlflow models serve"]["rps"]
            print(f"{name}: shipyard/mlflow = {ratio:.1f}x req/s")
            for server, figures in by_server.items():
                print(_row(server, figures))
        c16 = results["single row, concurrency 16"]
        print(f"\ntargets: >= {TARGETS['rps_ratio_c16']:.0f}x mlflow at concurrency 16: "
              f"{c16['shipyard']['rps'] / c16['mlflow models serve']['rps']:.1f}x; "
              f"p99 < {TARGETS['p99_ms_c1']:.0f} ms single row at concurrency 1: "
              f"{results['single row, concurrency 1']['shipyard']['p99_ms']:.2f} ms")
        print(f"\nlocal platform memory (registry, server, scheduler): RSS {rss_up:.0f} MiB after up, "
              f"{rss_loop:.0f} MiB after the loop (PSS {pss_up:.0f} / {pss_loop:.0f} MiB; target RSS < "
              f"{TARGETS['rss_mib']:.0f} MiB); `mlflow models serve` alone: RSS {mlflow_rss:.0f} MiB")
    finally:
        if mlflow_serve is not None:
            _stop(mlflow_serve)
        subprocess.run([sys.executable, "-m", "infra.cli", "down", "--stack", "local", "--purge"], cwd=project,
                       env=env, capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _predict_floor(tracking_uri: str, version: str, body: bytes) -> tuple[float, float]:
    """p50/p99 (ms) of the champion's own predict() on one row, in this process: what no server can beat."""
    import mlflow.sklearn
    import pandas as pd

    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    model = mlflow.sklearn.load_model(f"models:/churn/{version}")
    split = json.loads(body)["dataframe_split"]
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    times = []
    for _ in range(200):
        started = time.perf_counter()
        model.predict(frame)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return times[100], times[198]


def _children(pid: int) -> list[int]:
    from infra.local.procs import group_members

    return [p for p in group_members(pid) if p != pid]


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
