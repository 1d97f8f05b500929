"""The steps of `shipyard up`, `down` and `status` on the local target (the thin shell over `reconcile`)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local import layout as lay
from infra.local import procs
from infra.local.reconcile import Decision, Observed, choose_port, decide, needs_install, stale, unmet_requirements
from infra.local.state import ProcessRecord, State
from infra.local.ui import Reporter
from infra.spec import ModelSpec, PlatformSpec

REGISTRY_TIMEOUT = 120.0
SERVER_TIMEOUT = 120.0

#: Prints {canonical name: installed version or null} for the requirement names given as arguments.
_INSTALLED_SCRIPT = """
import json, sys
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
out = {}
for text in sys.argv[1:]:
    name = Requirement(text).name
    try:
        out[canonicalize_name(name)] = version(name)
    except PackageNotFoundError:
        out[canonicalize_name(name)] = None
print(json.dumps(out))
"""


class PlatformError(RuntimeError):
    """A step of the local platform failed; the message says which and where its log is."""


@dataclass
class LocalPlatform:
    """One local stack: its spec, its state directory and the reporter that shows progress."""

    project_dir: Path
    stack: str
    spec: PlatformSpec
    layout: lay.Layout
    reporter: Reporter

    # -- helpers ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One command at a time per stack."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with open(self.layout.root / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PlatformError(f"another shipyard command is working on {self.layout.root}") from None
            yield

    def model(self, name: str) -> ModelSpec:
        """A model of the spec by name; PlatformError listing the known ones."""
        for model in self.spec.models:
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.spec.models)
        raise PlatformError(f"no model {name!r} in stack {self.stack!r} (models: {known})")

    def observe(self, record: ProcessRecord | None, spec: lay.ProcessSpec) -> Observed | None:
        """What a recorded process looks like now."""
        if record is None:
            return None
        alive = procs.is_alive(record)
        healthy = alive and (spec.health_url is None or procs.http_status(spec.health_url)[0] != 0)
        return Observed(alive=alive, healthy=healthy, fingerprint=record.fingerprint)

    def tracking_uri(self, state: State) -> str:
        """The registry's URL."""
        return lay.url(state.ports[lay.REGISTRY])

    def champion_version(self, tracking_uri: str, model: ModelSpec) -> str | None:
        """The version the model's serving alias points at, or None."""
        query = urllib.parse.urlencode({"name": model.registered_model, "alias": model.serving.alias})
        status, body = procs.http_status(f"{tracking_uri}/api/2.0/mlflow/registered-models/alias?{query}", 10.0)
        if status == 200:
            return str(json.loads(body)["model_version"]["version"])
        if status in (400, 404):
            return None
        raise PlatformError(f"the registry at {tracking_uri} answered {status or 'nothing'} to an alias lookup")

    # -- up ----------------------------------------------------------------------------------------------------
    def up(self) -> dict[str, Any]:
        """Bring every process of the platform to the wanted state; idempotent."""
        with self.locked():
            return self._up()

    def _up(self) -> dict[str, Any]:
        from infra.packaging import build_wheel

        state = State.load(self.layout.state_file)
        state.stack = self.stack
        for path in (self.layout.logs, self.layout.artifacts):
            path.mkdir(parents=True, exist_ok=True)
        changes: list[str] = []
        self._assign_ports(state)

        registry = lay.registry_process(self.spec, self.layout, state.ports[lay.REGISTRY])
        # A registry without a database has no champion: training can start before it answers.
        cold = not (self.layout.registry_dir / "mlflow.db").exists()
        with self.reporter.step("Registry (MLflow tracking server)") as step:
            started = self._apply(state, registry, changes)
            step.done(f"{'starting' if started else 'running'} at {self.tracking_uri(state)}")

        with self.reporter.step("Package the pipelines wheel") as step:
            package = build_wheel(self.project_dir)
            step.done(f"{package.version} ({'built' if package.rebuilt else 'unchanged'})")

        with self.reporter.step("Compute environment") as step:
            venv_ok = self.layout.venv_python.is_file()
            if needs_install(state.wheel_version, package.version, venv_ok):
                self._install(package.path, package.requirements, venv_ok)
                state.wheel_version = package.version
                state.save(self.layout.state_file)
                changes.append(f"installed {package.version}")
                step.done(f"installed {package.filename} into {self.layout.venv}")
            else:
                step.done(f"{package.version} already installed")

        tracking = self.tracking_uri(state)
        digests = self._write_configs(tracking)
        training = {m.name: self._start_training(m, tracking) for m in self.spec.models} if cold else {}
        wanted = [lay.serving_process_spec(m, self.layout, state.ports[lay.serving_process(m.name)],
                                           digests[m.name], package.version) for m in self.spec.models]
        wanted.append(lay.scheduler_process(self.spec, self.layout, lay.digest(digests), package.version))
        # Servers start before any training ends: they load the champion as soon as it exists.
        with self.reporter.step("Model servers and monitor scheduler") as step:
            started = [spec for spec in wanted if self._apply(state, spec, changes)]
            for name in stale(state.processes, [lay.REGISTRY, *(s.name for s in wanted)]):
                procs.stop(state.processes.pop(name))
                changes.append(f"stopped {name} (no longer in the spec)")
            state.save(self.layout.state_file)
            step.done(f"started {', '.join(s.name for s in started)}" if started else "all running")

        with self.reporter.step("Registry ready") as step:
            self._wait_ready(state, registry, REGISTRY_TIMEOUT)
            step.done(tracking)

        champions = {}
        for model in self.spec.models:
            version = None if model.name in training else self.champion_version(tracking, model)
            if version is None:
                with self.reporter.step(f"Train {model.name} (no {model.serving.alias} yet)") as step:
                    process = training.get(model.name) or self._start_training(model, tracking)
                    version = self._finish_training(model, tracking, process)
                    changes.append(f"trained {model.name} v{version}")
                    step.done(f"version {version} is {model.serving.alias}")
                procs.http_status(f"{lay.url(state.ports[lay.serving_process(model.name)])}/-/reload", 60.0, "POST",
                                  headers=lay.auth_headers())
            champions[model.name] = version
        if started:
            with self.reporter.step("Servers ready") as step:
                for spec in started:
                    self._wait_ready(state, spec, SERVER_TIMEOUT)
                step.done(", ".join(f"{m.name} v{champions[m.name]}" for m in self.spec.models))
        state.save(self.layout.state_file)
        return self.summary(state, changes, champions)

    def _assign_ports(self, state: State) -> None:
        planned = lay.planned_ports(self.spec, lay.port_base())
        for name, port in planned.items():
            record = state.processes.get(name)
            ours = record is not None and procs.is_alive(record)
            state.ports[name] = choose_port(port, state.ports.get(name), ours, procs.port_is_free, procs.free_port)
        for name in list(state.ports):
            if name not in planned:
                del state.ports[name]

    def _apply(self, state: State, spec: lay.ProcessSpec, changes: list[str]) -> bool:
        """Start or restart `spec` if it needs it; True when a process was started."""
        record = state.processes.get(spec.name)
        decision: Decision = decide(spec, self.observe(record, spec))
        if decision.action == "keep":
            return False
        if record is not None:
            procs.stop(record)
        if spec.port is not None and not procs.port_is_free(spec.port):
            raise PlatformError(f"port {spec.port} for {spec.name} is taken by another program; free it or set "
                                f"{lay.PORT_BASE_ENV} to another base port")
        state.processes[spec.name] = procs.start(spec, self.layout.log(spec.name), self.project_dir)
        state.save(self.layout.state_file)
        changes.append(f"{'restarted' if decision.action == 'restart' else 'started'} {spec.name}: {decision.reason}")
        return True

    def _wait_ready(self, state: State, spec: lay.ProcessSpec, timeout: float) -> None:
        record = state.processes[spec.name]
        if spec.health_url is None:
            ok = procs.wait_until(lambda: procs.is_alive(record), 1.0) and procs.is_alive(record)
        else:
            ok = procs.wait_until(lambda: procs.http_status(spec.health_url)[0] == 200, timeout,
                                  alive=lambda: procs.is_alive(record))
        if not ok:
            raise PlatformError(f"{spec.name} did not become ready ({spec.health_url or 'exited'}); "
                                f"last lines of {record.log}:\n{procs.log_tail(record.log)}")

    def _install(self, wheel: Path, requirements: tuple[str, ...], venv_ok: bool) -> None:
        venv = self.layout.venv
        if not venv_ok:
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                           check=True, capture_output=True)
        # A venv made from inside a venv sees the base interpreter's packages, not this environment's:
        # point it at this environment's site-packages, so the wheel's dependencies come from here.
        site = Path(subprocess.run([str(self.layout.venv_python), "-c", "import sysconfig; "
                                    "print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True,
                                   text=True).stdout.strip())
        ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
        (site / "_shipyard_environment.pth").write_text("".join(f"{p}\n" for p in ours))
        result = subprocess.run([sys.executable, "-m", "pip", "--python", str(self.layout.venv_python), "install",
                                 "--no-deps", "--force-reinstall", "--no-index", "--disable-pip-version-check",
                                 "--quiet", str(wheel)], capture_output=True, text=True)
        if result.returncode != 0:
            raise PlatformError(f"installing {wheel.name} failed:\n{result.stderr[-2000:]}")
        found = subprocess.run([str(self.layout.venv_python), "-c", _INSTALLED_SCRIPT, *requirements],
                               capture_output=True, text=True)
        if found.returncode != 0:
            raise PlatformError(f"cannot inspect the compute environment:\n{found.stderr[-2000:]}")
        problems = unmet_requirements(requirements, json.loads(found.stdout))
        if problems:
            raise PlatformError("the compute environment lacks what the wheel declares: " + "; ".join(problems)
                                + " (install shipyard with the 'local' extra)")

    def _write_configs(self, tracking_uri: str) -> dict[str, str]:
        digests = {}
        for model in self.spec.models:
            document = lay.run_config(self.spec, model, self.layout, tracking_uri)
            path = self.layout.config(model.name)
            text = json.dumps(document, indent=2, sort_keys=True) + "\n"
            if not path.is_file() or path.read_text() != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            for directory in (self.layout.inference_log(model.name), self.layout.reports,
                              self.layout.metrics_file(model.name).parent):
                directory.mkdir(parents=True, exist_ok=True)
            digests[model.name] = lay.digest(document)
        return digests

    def pipelines_command(self, step: str, model: ModelSpec) -> list[str]:
        """`python -m pipelines STEP --config ...` in the compute environment."""
        return [str(self.layout.venv_python), "-m", "pipelines", step, "--config", str(self.layout.config(model.name))]

    def run_step(self, step: str, model: ModelSpec, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run one pipelines step to completion; its output is appended to `logs/<step>-<model>.log`."""
        log_path = self.layout.log(f"{step}-{model.name}")
        env = {**os.environ, **lay.BASE_ENV}
        with open(log_path, "a") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {step} {model.name}\n")
            log.flush()
            result = subprocess.run(self.pipelines_command(step, model), cwd=self.project_dir, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
                                    timeout=timeout)
            log.write(result.stdout)
        return result

    def _start_training(self, model: ModelSpec, tracking: str) -> subprocess.Popen[bytes]:
        """Start a model's initial training run (it waits for the registry itself)."""
        log_path = self.layout.log(f"run-{model.name}")
        with open(log_path, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} initial training of {model.name}\n".encode())
            log.flush()
            return subprocess.Popen(lay.training_command(self.layout, model, tracking, REGISTRY_TIMEOUT),
                                    cwd=self.project_dir, env={**os.environ, **lay.BASE_ENV},
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def _finish_training(self, model: ModelSpec, tracking: str, process: subprocess.Popen[bytes]) -> str:
        log_path = self.layout.log(f"run-{model.name}")
        try:
            code = process.wait(timeout=self.spec.training.time_limit_minutes * 60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise PlatformError(f"training {model.name} ran over training.time_limit_minutes; see {log_path}") from None
        if code != 0:
            raise PlatformError(f"training {model.name} failed (exit {code}); "
                                f"last lines of {log_path}:\n{procs.log_tail(log_path)}")
        version = self.champion_version(tracking, model)
        if version is None:
            raise PlatformError(f"training {model.name} finished but no version passed the gates, so nothing "
                                f"can be served; see {log_path}")
        return version

    # -- down ----------------------------------------------------------------------------------------------
    def down(self, purge: bool) -> dict[str, Any]:
        """Stop every recorded process (scheduler, servers, then the registry); `purge` deletes the state."""
        with self.locked():
            state = State.load(self.layout.state_file)
            stopped, leftovers = [], []
            order = sorted(state.processes, key=lambda n: (n == lay.REGISTRY, n != lay.SCHEDULER, n))
            for name in order:
                record = state.processes[name]
                with self.reporter.step(f"Stop {name}") as step:
                    was_alive = procs.is_alive(record)
                    left = procs.stop(record)
                    leftovers += left
                    if not left:
                        del state.processes[name]
                        state.save(self.layout.state_file)
                    step.done("stopped" if was_alive else "was not running")
                    if was_alive:
                        stopped.append(name)
        if leftovers:
            raise PlatformError(f"processes still alive after SIGKILL: {leftovers}")
        if purge:
            with self.reporter.step("Delete the state directory") as step:
                shutil.rmtree(self.layout.root, ignore_errors=True)
                step.done(str(self.layout.root))
        return {"stack": self.stack, "stopped": stopped, "purged": purge, "state_dir": str(self.layout.root)}

    # -- status ----------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What runs, where, which version serves, and the last drift result of each model."""
        state = State.load(self.layout.state_file)
        processes = {}
        for name, record in sorted(state.processes.items()):
            alive = procs.is_alive(record)
            processes[name] = {"pid": record.pid, "alive": alive, "port": record.port,
                               "url": lay.url(record.port) if record.port else None, "log": record.log}
        models = {}
        for model in self.spec.models:
            name = lay.serving_process(model.name)
            entry: dict[str, Any] = {"endpoint": None, "version": None, "last_drift": last_drift(self.layout, model)}
            if name in state.ports:
                entry["endpoint"] = f"{lay.url(state.ports[name])}/invocations"
                status, body = procs.http_status(f"{lay.url(state.ports[name])}/health")
                if status in (200, 503):
                    health = json.loads(body)
                    entry.update(version=health.get("version"), loaded_at=health.get("loaded_at"),
                                 alias=health.get("alias"))
            models[model.name] = entry
        running = any(p["alive"] for p in processes.values())
        return {"stack": self.stack, "state_dir": str(self.layout.root), "running": running,
                "tracking_uri": self.tracking_uri(state) if lay.REGISTRY in state.ports else None,
                "wheel_version": state.wheel_version, "processes": processes, "models": models}

    def summary(self, state: State, changes: list[str], champions: dict[str, str]) -> dict[str, Any]:
        """The result of `up`."""
        return {
            "stack": self.stack, "state_dir": str(self.layout.root), "changed": bool(changes), "changes": changes,
            "tracking_uri": self.tracking_uri(state), "wheel_version": state.wheel_version,
            "endpoints": {m.name: f"{lay.url(state.ports[lay.serving_process(m.name)])}/invocations"
                          for m in self.spec.models},
            "versions": champions,
            "processes": {name: {"pid": r.pid, "port": r.port, "log": r.log} for name, r in state.processes.items()},
        }


def last_drift(layout: lay.Layout, model: ModelSpec) -> dict[str, Any] | None:
    """The newest drift report of a model, summarized (None before the first monitor run)."""
    try:
        document = json.loads(layout.latest_report(model).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return summarize_report(document)


def summarize_report(document: dict[str, Any]) -> dict[str, Any]:
    """The fields of a monitor report (`pipelines.monitor`) the CLI shows."""
    drift = document.get("drift") or {}
    decision = document.get("decision") or {}
    return {
        "generated_at": document.get("generated_at"),
        "version": document.get("version"),
        "rows": document.get("rows", 0),
        "drifted": bool(drift.get("drifted")),
        "severity": drift.get("severity", "none") if drift else "no traffic",
        "drifted_features": list(drift.get("drifted_features", [])),
        "retrain_warranted": bool(decision.get("warranted")),
        "retrain_reasons": list(decision.get("reasons", [])),
        "retrain_started": document.get("started"),
        "errors": list(document.get("errors", [])),
        "report": (document.get("reports") or {}).get("html"),
    }
