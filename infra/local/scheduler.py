"""The monitor scheduler process: runs each model's `python -m pipelines monitor` at its cron schedule.

`python -m infra.local.scheduler --python VENV_PYTHON --job NAME=CRON=CONFIG [--job ...]`. Runs are
sequential (one machine, one monitor at a time), each logged to `$SHIPYARD_LOG_DIR/monitor-<name>.log`.
SIGTERM ends it between runs, or stops the run in progress.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from infra.cron import Cron


@dataclass(frozen=True)
class Job:
    """One model's monitor schedule."""

    name: str
    cron: Cron
    config: str


def parse_job(text: str) -> Job:
    """'churn=*/15 * * * *=/path/run.json' -> Job."""
    name, schedule, config = text.split("=", 2)
    return Job(name, Cron.parse(schedule), config)


def due(jobs: list[Job], when: dt.datetime) -> list[Job]:
    """The jobs scheduled at the minute of `when`."""
    return [job for job in jobs if job.cron.matches(when)]


def monitor_command(python: str, job: Job) -> list[str]:
    """The monitor run of one job."""
    return [python, "-m", "pipelines", "monitor", "--config", job.config]


def main(argv: list[str] | None = None) -> int:
    """Run until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m infra.local.scheduler")
    parser.add_argument("--python", required=True)
    parser.add_argument("--job", action="append", default=[], type=parse_job)
    args = parser.parse_args(argv)
    log_dir = Path(os.environ.get("SHIPYARD_LOG_DIR", "."))
    stop = threading.Event()
    running: list[subprocess.Popen[bytes]] = []

    def _terminate(signum: int, frame: object) -> None:
        stop.set()
        for process in running:
            process.terminate()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    print(f"scheduler: {len(args.job)} job(s): " + ", ".join(j.name for j in args.job), flush=True)
    last_minute = None
    while not stop.is_set():
        now = dt.datetime.now().replace(second=0, microsecond=0)
        if now != last_minute:
            last_minute = now
            for job in due(args.job, now):
                if stop.is_set():
                    break
                print(f"{now:%Y-%m-%d %H:%M} running monitor for {job.name}", flush=True)
                with open(log_dir / f"monitor-{job.name}.log", "ab") as log:
                    process = subprocess.Popen(monitor_command(args.python, job), stdout=log, stderr=log)
                    running.append(process)
                    code = process.wait()
                    running.remove(process)
                print(f"monitor for {job.name} exited with {code}", flush=True)
        stop.wait(max(1.0, 60 - dt.datetime.now().second))
    return 0


if __name__ == "__main__":
    sys.exit(main())
