"""End to end on the demo stack with real processes: up, predict, up again, kill -9 and recover, shifted
traffic, drift, retraining, promotion and the new version served while a client sees no failure, down."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from infra.local import procs
from infra.local.layout import copy_project
from infra.local.state import State

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_base() -> int:
    """A base port with the next one free too (the demo stack uses two)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base < 65000 and procs.port_is_free(base) and procs.port_is_free(base + 1):
            return base
    raise RuntimeError("no free pair of ports")


def shipyard(project: Path, env: dict[str, str], *args: str, timeout: float = 300) -> dict:
    result = subprocess.run([sys.executable, "-m", "infra.cli", *args, "--stack", "local", "--json"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


class Client(threading.Thread):
    """Sends single-row predictions until stopped; counts answers by status."""

    def __init__(self, url: str, body: dict):
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.stop = threading.Event()
        self.statuses: dict[int, int] = {}
        self.versions: set[str] = set()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    status = client.post(self.url, json=self.body).status_code
                except httpx.HTTPError:
                    status = 0
                self.statuses[status] = self.statuses.get(status, 0) + 1
                time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="process checks read /proc")
def test_the_whole_loop_on_real_processes(tmp_path):
    from pipelines.demo import demo_traffic

    project = copy_project(PROJECT, tmp_path / "project")
    state_dir = project / ".shipyard" / "local" / "local"
    env = {k: v for k, v in os.environ.items() if k != "SHIPYARD_STATE_DIR"}
    env["SHIPYARD_LOCAL_PORT_BASE"] = str(_free_base())
    try:
        first = shipyard(project, env, "up")
        assert first["changed"] and first["versions"]["churn"] == "1"
        url = first["endpoints"]["churn"]
        rows = demo_traffic("demo://classification?rows=5000&seed=7", rows=3)
        body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy(dtype=object).tolist()}}
        response = httpx.post(url, json=body, timeout=30)
        assert response.status_code == 200 and len(response.json()["predictions"]) == 3

        again = shipyard(project, env, "up")
        assert again["changed"] is False and again["changes"] == [], again["changes"]

        state = State.load(state_dir / "state.json")
        os.kill(state.processes["serve-churn"].pid, signal.SIGKILL)
        recovered = shipyard(project, env, "up")
        assert recovered["changes"] == ["started serve-churn: not running (exited or killed)"]
        assert httpx.post(url, json=body, timeout=30).status_code == 200

        client = Client(url, body)
        client.start()
        drift = shipyard(project, env, "drift", "--model", "churn", "--shift", "1.5", "--rows", "1500")
        time.sleep(1.0)
        client.stop.set()
        client.join(timeout=60)
        assert drift["drift"]["drifted"] and "num_0" in drift["drift"]["drifted_features"]
        assert drift["drift"]["retrain_started"] and "promoted" in drift["drift"]["retrain_started"]
        assert (drift["version_before"], drift["version_after"]) == ("1", "2")
        assert set(client.statuses) == {200} and client.statuses[200] > 10, client.statuses

        status = shipyard(project, env, "status")
        assert status["models"]["churn"]["version"] == "2"
        assert status["models"]["churn"]["last_drift"]["drifted"] is True
        assert all(p["alive"] for p in status["processes"].values())
    finally:
        recorded = State.load(state_dir / "state.json").processes
        down = subprocess.run([sys.executable, "-m", "infra.cli", "down", "--stack", "local", "--json"], cwd=project,
                              env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert all(procs.group_members(record.pid) == [] for record in recorded.values())
    assert _processes_mentioning(str(state_dir)) == []
    assert (state_dir / "mlflow" / "mlflow.db").is_file()  # down keeps the registry data
    purge = subprocess.run([sys.executable, "-m", "infra.cli", "down", "--stack", "local", "--purge"], cwd=project,
                           env=env, capture_output=True, text=True, timeout=60)
    assert purge.returncode == 0 and not state_dir.exists()
