"""The runtime image's commands, run for real in what the image installs, as a non-root user.

No Docker engine here: the image's Python environment is rebuilt the way the Dockerfile builds it (`pip install
--require-hashes -r requirements/runtime.lock` into a fresh venv, cached per lock hash under the temp dir so reruns
are fast), and the commands the Kubernetes pods run — the MLflow tracking server, the init container's wheel
install, `python -m pipelines run`, `python -m pipelines serve` — run in it as uid 65534 with only a directory
under /tmp writable (HOME included), the venv read-only like the image's root filesystem. Needs root to drop
privileges (CI runs as root); skipped otherwise.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest
from pipeline_helpers import DATASET, free_port, stop

from infra.image import LOCK
from infra.packaging import build_wheel
from infra.spec import PlatformSpec
from infra.targets.kubernetes import layout
from infra.targets.kubernetes.registry import BACKEND_STORE_VAR, allowed_hosts, mlflow_command
from infra.targets.kubernetes.sizes import resources
from infra.targets.kubernetes.training import run_config
from infra.targets.kubernetes.workload import (
    PYTHON_ENV,
    PipelinesRuntime,
    env_from_files,
    install_wheel_container,
    pipelines_pod,
)
from pipelines.demo import demo_frame

ROOT = Path(__file__).resolve().parents[2]
#: `nobody`: a non-root uid that, like the image's own user, has a passwd entry.
UID = 65534
NAMESPACE = "ml"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                       reason="runs the image's commands as a non-root user, which needs root to switch to"),
    pytest.mark.skipif(sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64" or sys.platform != "linux",
                       reason="the lock is for the image's Python (3.11, linux x86-64)"),
]


def base_python() -> str:
    """A Python 3.11 the unprivileged user can run (this one may live where it cannot enter, e.g. under /root)."""
    candidates = [sys._base_executable, *(shutil.which(name, path="/usr/local/bin:/usr/bin:/bin")
                                          for name in ("python3.11", "python3"))]
    probe = "import sys, venv; assert sys.version_info[:2] == (3, 11)"
    for candidate in dict.fromkeys(c for c in candidates if c):
        try:
            probed = subprocess.run([candidate, "-c", probe], preexec_fn=as_user, capture_output=True, env={})
            if probed.returncode == 0:
                return candidate
        except PermissionError:
            continue
    pytest.skip(f"no Python 3.11 that uid {UID} can run (tried {', '.join(filter(None, candidates))})")


def locked_venv() -> Path:
    """A venv holding exactly the lock, installed as the Dockerfile does; built once per lock and interpreter."""
    python = base_python()
    lock = (ROOT / LOCK).read_bytes()
    key = hashlib.sha256(lock + os.path.realpath(python).encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "shipyard-test-cache"
    cache.mkdir(mode=0o755, exist_ok=True)
    venv = cache / f"runtime-{key}"
    with (cache / f"runtime-{key}.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (venv / ".complete").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([python, "-m", "venv", str(venv)], check=True)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
            install = subprocess.run([*pip, "install", "--require-hashes", "-r", str(ROOT / LOCK)],
                                     capture_output=True, text=True, timeout=900)
            assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
            subprocess.run([*pip, "check"], check=True, timeout=120)
            (venv / ".complete").write_text(key)
    return venv


def as_user() -> None:
    """`preexec_fn`: drop every group and become `UID` before the command runs."""
    os.setgroups([])
    os.setgid(UID)
    os.setuid(UID)


class Pod:
    """The pod's filesystem mapped under one directory in /tmp, owned by the unprivileged user."""

    PATHS = (layout.SITE_DIR, layout.CONFIG_DIR, layout.DATA_DIR, layout.WHEEL_DIR, layout.TMP_DIR,
             layout.SECRETS_DIR)

    def __init__(self, root: Path, venv: Path):
        self.root, self.venv = root, venv

    def path(self, word: str) -> str:
        """A pod path (or an argument holding one) mapped under the root."""
        for prefix in self.PATHS:
            if word == prefix or word.startswith(f"{prefix}/"):
                return str(self.root / prefix.strip("/")) + word[len(prefix):]
        return word

    def env(self, pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
        """The container's environment, paths mapped, on a PATH that finds the image's `python` and `mlflow`."""
        return {"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8",
                **{name: self.path(value) for name, value in pairs}}

    def start(self, command: Sequence[str], env: Mapping[str, str], log: str) -> subprocess.Popen[bytes]:
        """Start a container command as the unprivileged user, in its writable directory."""
        out = (self.root / f"{log}.log").open("wb")
        # Its own session, so `stop` ends the server's workers with it.
        return subprocess.Popen([self.path(w) for w in command], env=dict(env), cwd=self.root / "tmp",
                                stdout=out, stderr=subprocess.STDOUT, preexec_fn=as_user, start_new_session=True)

    def run(self, command: Sequence[str], env: Mapping[str, str], log: str, timeout: float) -> int:
        """Run a container command to completion as the unprivileged user; its exit code."""
        process = self.start(command, env, log)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]


def wait_until(check: Callable[[], bool], process: subprocess.Popen[bytes], what: str, pod: Pod, log: str,
               timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited ({process.returncode}):\n{pod.log(log)}")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{what} did not come up within {timeout} s:\n{pod.log(log)}")


@pytest.fixture(scope="module")
def pod() -> Iterator[Pod]:
    venv = locked_venv()
    root = Path(tempfile.mkdtemp(prefix="shipyard-image-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        pod = Pod(root, venv)
        for prefix in Pod.PATHS:
            Path(pod.path(prefix)).mkdir(parents=True)
        # Writable: the emptyDirs and the data volume. The wheel and config stay root's, read-only like ConfigMaps.
        for prefix in (layout.SITE_DIR, layout.TMP_DIR, layout.DATA_DIR):
            os.chown(pod.path(prefix), UID, UID)
        yield pod
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_mlflow_server_pipelines_run_and_serve_as_a_non_root_user(pod: Pod, tmp_path: Path) -> None:
    spec = PlatformSpec.model_validate({
        "target": "kubernetes", "runtime_image": "runtime:test",
        "models": [{"name": "churn", "pipeline": {"dataset_uri": DATASET, "gates": {"max_latency_ms": 1000}}}]})
    model = spec.models[0]

    # The tracking server, as the registry Deployment runs it (loopback and a free port here).
    mlflow_port = free_port()
    command = mlflow_command(spec)
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(mlflow_port)
    command[command.index("--artifacts-destination") + 1] = str(pod.root / "tmp" / "artifacts")
    mlflow_env = pod.env([*PYTHON_ENV, ("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),
                          ("MLFLOW_SERVER_ALLOWED_HOSTS", allowed_hosts(NAMESPACE, spec.k8s.cluster_domain))])
    # The backend store's URI, as the Deployment reads it: from its Secret's file (root's, read-only), exported
    # by the command's shell wrapper.
    uri_file = Path(pod.path(f"{layout.SECRETS_DIR}/backend-store/uri"))
    uri_file.parent.mkdir(parents=True)
    uri_file.write_text(f"sqlite:///{pod.path(layout.TMP_DIR)}/mlflow.db\n")
    uri_file.chmod(0o644)
    command = env_from_files(command, {BACKEND_STORE_VAR: str(uri_file)})
    tracking = f"http://127.0.0.1:{mlflow_port}"
    server = pod.start(command, mlflow_env, "mlflow")
    serving: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: httpx.get(f"{tracking}/health", timeout=2).status_code == 200, server,
                   "mlflow server", pod, "mlflow")

        # The wheel and the run configuration, as their read-only ConfigMaps mount them.
        package = build_wheel(ROOT, tmp_path / "dist")
        shutil.copy(package.path, pod.path(f"{layout.WHEEL_DIR}/{package.filename}"))
        document = json.loads(run_config(spec, model, NAMESPACE))
        document.update(tracking_uri=tracking, retrain="none")
        config = Path(pod.path(layout.config_file(model.name)))
        config.write_text(json.dumps(document).replace(layout.DATA_DIR, pod.path(layout.DATA_DIR)))
        runtime = PipelinesRuntime(image="runtime:test", wheel_configmap="wheel", wheel_filename=package.filename,
                                   config_configmap="config", model=model.name)

        install = install_wheel_container(runtime)
        assert pod.run(install.command, pod.env([(e.name, e.value) for e in install.env]), "install", 120) == 0, \
            pod.log("install")

        def container(step: str, args: Sequence[str] = ()):
            pod_spec = pipelines_pod(runtime, step, service_account="sa", container_resources=resources("small"),
                                     args=args)
            (main,) = pod_spec.containers
            return main.command, pod.env([(e.name, e.value) for e in main.env])

        command, env = container("run")
        assert pod.run(command, env, "run", 300) == 0, pod.log("run")
        alias = httpx.get(f"{tracking}/api/2.0/mlflow/registered-models/alias",
                          params={"name": model.registered_model, "alias": model.serving.alias}, timeout=10)
        assert alias.status_code == 200, alias.text

        serve_port = free_port()
        command, env = container("serve", ["--host", "127.0.0.1", "--port", str(serve_port)])
        serving = pod.start(command, env, "serve")
        endpoint = f"http://127.0.0.1:{serve_port}"
        wait_until(lambda: httpx.get(f"{endpoint}/ping", timeout=2).status_code == 200, serving,
                   "model server", pod, "serve")
        rows = demo_frame(DATASET).drop(columns=[model.pipeline.target_column]).head(3)
        payload = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        response = httpx.post(f"{endpoint}/invocations", json=payload, timeout=30)
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 3
    finally:
        for process in (serving, server):
            if process is not None:
                stop(process)
    # They ran as the unprivileged user: what they wrote is its own.
    written = [Path(pod.path(layout.TMP_DIR)) / "mlflow.db", Path(pod.path(layout.SITE_DIR)) / "pipelines"]
    assert all(path.stat().st_uid == UID for path in written)
