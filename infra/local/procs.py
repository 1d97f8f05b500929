"""The process shell of the local platform: start in its own process group, check, stop without orphans."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from infra.local.layout import HOST, ProcessSpec
from infra.local.state import ProcessRecord

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp [2], start time [19])."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a recycled pid apart), if known."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our child (tests run `up` in-process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(record: ProcessRecord) -> bool:
    """Whether the recorded process still runs (same pid and start time, not a zombie)."""
    _reap(record.pid)
    if not PROC.is_dir():
        try:
            os.kill(record.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return record.start_ticks is None or int(fields[19]) == record.start_ticks


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group."""
    if not PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def start(spec: ProcessSpec, log_path: Path, cwd: Path, extra_env: dict[str, str] | None = None) -> ProcessRecord:
    """Start `spec` in a new session (its own process group), output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **dict(spec.env), **(extra_env or {})}
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}: {' '.join(spec.argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(list(spec.argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return ProcessRecord(pid=process.pid, start_ticks=start_ticks(process.pid), fingerprint=spec.fingerprint,
                         port=spec.port, argv=list(spec.argv), log=str(log_path))


def stop(record: ProcessRecord, timeout: float = 10.0) -> list[int]:
    """SIGTERM the process group, SIGKILL what is left after `timeout`; returns pids still alive (none)."""
    leftovers = group_members(record.pid) if not is_alive(record) else [record.pid]
    if not leftovers:
        return []
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not group_members(record.pid):
            return []
        time.sleep(0.05)
    _signal_group(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _reap(record.pid)
        left = group_members(record.pid)
        if not left:
            return []
        time.sleep(0.05)
    return group_members(record.pid)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def http_status(url: str, timeout: float = 2.0, method: str = "GET", body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """(status, body) of one loopback HTTP request; status 0 when nothing answers."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def wait_until(check: Callable[[], bool], timeout: float, alive: Callable[[], bool] | None = None,
               interval: float = 0.1) -> bool:
    """Poll `check` until true or `timeout`; gives up early once `alive` says the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        if alive is not None and not alive():
            return check()
        time.sleep(interval)
    return False


def port_is_free(port: int) -> bool:
    """Whether nothing listens on the loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path | str, lines: int = 20) -> str:
    """The last lines of a log file."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
