"""Where the local platform lives and how its processes are started: pure functions of the spec.

State directory: `$SHIPYARD_STATE_DIR`, else `<project>/.shipyard/local/<stack>/`, holding `state.json`
(pids, ports, versions), `logs/<process>.log`, the compute virtual environment `venv/`, the registry
(`mlflow/mlflow.db`, `mlflow/artifacts/`), each model's run configuration `configs/<model>.json`, its
inference log `inference/<model>/`, drift reports `reports/<registered model>/` and metrics `metrics/<model>.prom`.
Ports: the tracking server on the base port (`$SHIPYARD_LOCAL_PORT_BASE`, default 5500), each model's
endpoint on the next ones, in spec order.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.runconfig import pipeline_config
from infra.spec import ModelSpec, PlatformSpec

STATE_DIR_ENV = "SHIPYARD_STATE_DIR"
PORT_BASE_ENV = "SHIPYARD_LOCAL_PORT_BASE"
DEFAULT_PORT_BASE = 5500
HOST = "127.0.0.1"

REGISTRY = "mlflow"
SCHEDULER = "scheduler"


API_KEY_ENV = "SHIPYARD_API_KEY"


def auth_headers(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Headers for the platform's own calls to its servers: the API key when one is set (servers inherit it)."""
    key = env.get(API_KEY_ENV)
    return {"Authorization": f"Bearer {key}"} if key else {}


def serving_process(model: str) -> str:
    """The process name of a model's server."""
    return f"serve-{model}"


def port_base(env: Mapping[str, str] = os.environ) -> int:
    """The first port of the local platform."""
    return int(env.get(PORT_BASE_ENV) or DEFAULT_PORT_BASE)


def planned_ports(spec: PlatformSpec, base: int = DEFAULT_PORT_BASE) -> dict[str, int]:
    """Process name -> port: the tracking server on `base`, each model's endpoint on the next ports."""
    ports = {REGISTRY: base}
    for offset, model in enumerate(spec.models, start=1):
        ports[serving_process(model.name)] = base + offset
    return ports


def url(port: int) -> str:
    """The loopback URL of a port."""
    return f"http://{HOST}:{port}"


def state_dir(project_dir: Path, stack: str, env: Mapping[str, str] = os.environ) -> Path:
    """The stack's state directory."""
    override = env.get(STATE_DIR_ENV)
    return Path(override).resolve() if override else project_dir / ".shipyard" / "local" / stack


@dataclass(frozen=True)
class Layout:
    """Every path of one local stack."""

    root: Path

    @property
    def state_file(self) -> Path:
        """pids, ports, versions."""
        return self.root / "state.json"

    @property
    def logs(self) -> Path:
        """One log file per process."""
        return self.root / "logs"

    def log(self, name: str) -> Path:
        """The log file of process `name`."""
        return self.logs / f"{name}.log"

    @property
    def venv(self) -> Path:
        """The compute environment (the local "training cluster")."""
        return self.root / "venv"

    @property
    def venv_python(self) -> Path:
        """The compute environment's interpreter."""
        return self.venv / "bin" / "python"

    @property
    def registry_dir(self) -> Path:
        """MLflow's SQLite database and artifact store."""
        return self.root / "mlflow"

    @property
    def backend_store_uri(self) -> str:
        """MLflow's backend store."""
        return f"sqlite:///{self.registry_dir / 'mlflow.db'}"

    @property
    def artifacts(self) -> Path:
        """MLflow's artifact store."""
        return self.registry_dir / "artifacts"

    def config(self, model: str) -> Path:
        """A model's run configuration."""
        return self.root / "configs" / f"{model}.json"

    def inference_log(self, model: str) -> Path:
        """Where a model's server writes its inference log."""
        return self.root / "inference" / model

    @property
    def reports(self) -> Path:
        """The run configurations' `reports_uri`: each monitor writes under `<reports>/<registered model>/`."""
        return self.root / "reports"

    def latest_report(self, model: ModelSpec) -> Path:
        """The newest drift report of a model (written by `pipelines monitor`)."""
        return self.reports / model.registered_model / "latest.json"

    def metrics_file(self, model: str) -> Path:
        """The Prometheus text file of a model's drift metrics."""
        return self.root / "metrics" / f"{model}.prom"


def run_config(spec: PlatformSpec, model: ModelSpec, layout: Layout, tracking_uri: str) -> dict[str, Any]:
    """The run configuration of one model on the local platform."""
    return pipeline_config(
        spec, model, tracking_uri=tracking_uri,
        inference_log_uri=str(layout.inference_log(model.name)),
        reports_uri=str(layout.reports),
        sinks=["stdout", f"prometheus:{layout.metrics_file(model.name)}"],
        retrain="inline",
    )


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one long-lived process of the platform, and how to tell it is healthy."""

    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    port: int | None
    health_path: str | None

    @property
    def fingerprint(self) -> str:
        """Changes whenever the command or environment does: a running process with another one is restarted."""
        return hashlib.sha256(json.dumps([self.argv, self.env]).encode()).hexdigest()[:16]

    @property
    def health_url(self) -> str | None:
        """The URL answering 200 when the process is ready."""
        return url(self.port) + self.health_path if self.port and self.health_path else None


#: Environment of every process the platform runs: lean MLflow, quiet progress bars, unbuffered logs.
#: Models come from this platform's own registry, which is the trust boundary for loading them.
BASE_ENV = {
    "PYTHONUNBUFFERED": "1",
    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


def registry_process(spec: PlatformSpec, layout: Layout, port: int, python: str = sys.executable) -> ProcessSpec:
    """The MLflow tracking server: SQLite backend and artifacts under the state directory, lean."""
    argv = (python, "-m", "mlflow", "server", "--host", HOST, "--port", str(port),
            "--workers", str(spec.registry.workers),
            "--backend-store-uri", layout.backend_store_uri,
            "--artifacts-destination", str(layout.artifacts))
    return ProcessSpec(REGISTRY, argv, tuple(sorted(BASE_ENV.items())), port, "/health")


def serving_process_spec(model: ModelSpec, layout: Layout, port: int, config_digest: str,
                         wheel_version: str) -> ProcessSpec:
    """A model's server, run from the compute environment on its run configuration."""
    argv = (str(layout.venv_python), "-m", "pipelines", "serve", "--config", str(layout.config(model.name)),
            "--host", HOST, "--port", str(port))
    env = {**BASE_ENV, "SHIPYARD_CONFIG_DIGEST": config_digest, "SHIPYARD_PIPELINES_VERSION": wheel_version}
    return ProcessSpec(serving_process(model.name), argv, tuple(sorted(env.items())), port, "/ping")


def scheduler_process(spec: PlatformSpec, layout: Layout, config_digest: str, wheel_version: str,
                      python: str = sys.executable) -> ProcessSpec:
    """The monitor scheduler: runs each model's `monitor` at its schedule, in the compute environment."""
    argv = [python, "-m", "infra.local.scheduler", "--python", str(layout.venv_python)]
    for model in spec.models:
        argv += ["--job", f"{model.name}={model.monitoring.schedule}={layout.config(model.name)}"]
    env = {**BASE_ENV, "SHIPYARD_CONFIG_DIGEST": config_digest, "SHIPYARD_PIPELINES_VERSION": wheel_version,
           "SHIPYARD_LOG_DIR": str(layout.logs)}
    return ProcessSpec(SCHEDULER, tuple(argv), tuple(sorted(env.items())), None, None)


#: The training run of a cold start: imports first (the slow part), then waits for the registry, then runs
#: `python -m pipelines run`. Arguments: tracking URI, run configuration, timeout in seconds.
_TRAIN_SCRIPT = """
import sys, time, urllib.request
import mlflow, sklearn, pipelines.steps
from pipelines.__main__ import main
url, config, deadline = sys.argv[1] + "/health", sys.argv[2], time.monotonic() + float(sys.argv[3])
while True:
    try:
        with urllib.request.urlopen(url, timeout=2):
            break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("the registry at " + url + " did not answer")
        time.sleep(0.1)
sys.exit(main(["run", "--config", config, "--reason", "initial"]))
"""


def training_command(layout: Layout, model: ModelSpec, tracking_uri: str, wait_seconds: float) -> list[str]:
    """The initial training of a model in the compute environment (may start before the registry is up)."""
    return [str(layout.venv_python), "-c", _TRAIN_SCRIPT, tracking_uri, str(layout.config(model.name)),
            str(wait_seconds)]


def digest(document: Any) -> str:
    """A short stable hash of a JSON-able document."""
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


#: What `up` reads of a project: a copy of these is a project of its own (tests, benchmarks).
PROJECT_FILES = ("Pulumi.yaml", "pyproject.toml")
PROJECT_DIRS = ("stacks", "pipelines")


def copy_project(source: Path, target: Path) -> Path:
    """Copy the files `up` reads from `source` to a new directory `target`, so a run sees one fixed tree."""
    target.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(source / name, target / name)
    for name in PROJECT_DIRS:
        shutil.copytree(source / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    return target
