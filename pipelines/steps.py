"""The pipeline steps: each takes a RunConfig and returns a StepResult (a short summary and JSON-able data).

- `validate_data`: validate the dataset (against the champion's data profile when there is one).
- `train`: validate, then train and log the model with lineage, in a new MLflow run.
- `evaluate(run_id)`: metrics, plots and every gate for a training run.
- `register(run_id)`: register the run's model as a version (alias `challenger`), with its gate record.
- `promote(version)`: move the champion alias to a gated version (default: the `challenger`).
- `rollback`: point the champion alias back at the version it replaced.
- `run`: validate-data -> train -> evaluate -> register -> gates -> promote, on one MLflow run.
- `retrain(reason)`: `run`, tagged with what triggered it.
- `monitor(reason)`: drift and quality of the champion's traffic; starts retraining when warranted and allowed.

Expected failures (invalid data, rejected gates, a refused promotion) are results with `ok=False`; a
broken setting raises ConfigError; anything else propagates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines import registry
from pipelines.config import RunConfig
from pipelines.data import DataError
from pipelines.lineage import describe
from pipelines.monitor import run_monitor
from pipelines.pipeline import PipelineRun
from pipelines.registry import RegistryError
from pipelines.tracking import connect
from pipelines.validation import DataValidationError

#: Exit codes: 0 success; 1 a failure (invalid data, refused, error); 2 a configuration error (the CLI's);
#: 3 the gates rejected the challenger (the pipeline worked, the model did not make it).
EXIT_FAILED = 1
EXIT_REJECTED = 3


@dataclass
class StepResult:
    """What a step did: success, a few human lines, and data for `--json`."""

    step: str
    ok: bool
    summary: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    rejected: bool = False

    @property
    def exit_code(self) -> int:
        """0 when ok, 3 when the gates rejected the model, else 1."""
        return 0 if self.ok else EXIT_REJECTED if self.rejected else EXIT_FAILED

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"step": self.step, "ok": self.ok, "rejected": self.rejected, "summary": self.summary, **self.data}


def _start(config: RunConfig) -> Any:
    return PipelineRun(config=config, tracking=connect(config))


def _invalid(step: str, state: Any, error: Exception) -> StepResult:
    if isinstance(error, DataValidationError):
        return StepResult(step, False, [f"run {state.run_id}: data rejected", *error.report.summary().splitlines()],
                          {"run_id": state.run_id, "outcome": "invalid-data", "validation": error.report.to_dict()})
    return StepResult(step, False, [f"error: {error}"], {"run_id": state.run_id, "outcome": "error",
                                                          "error": str(error)})


def _version(version: str | None) -> str:
    return f"v{version}" if version else "(none)"


def _metrics_line(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))


def validate_data(config: RunConfig) -> StepResult:
    """Validate the configured dataset, recording the report in an MLflow run."""
    state = _start(config)
    try:
        with state.active("validate-data"):
            report = state.validate()
            state.outcome = "valid"
    except (DataValidationError, DataError) as exc:
        return _invalid("validate-data", state, exc)
    return StepResult("validate-data", True, [f"run {state.run_id}: {report.summary()}"],
                      {"run_id": state.run_id, "outcome": "valid", "validation": report.to_dict()})


def train(config: RunConfig) -> StepResult:
    """Validate and train; the model is logged to a new run (evaluate and register it with `--run-id`)."""
    state = _start(config)
    try:
        with state.active("train"):
            state.validate()
            state.train()
            state.outcome = "trained"
    except (DataValidationError, DataError) as exc:
        return _invalid("train", state, exc)
    return StepResult("train", True, [f"run {state.run_id}: trained {config.estimator} on {state.dataset.rows} rows",
                                      f"model {state.model_uri}", describe(state.lineage)],
                      {"run_id": state.run_id, "model_uri": state.model_uri, "outcome": "trained"})


def evaluate(config: RunConfig, run_id: str) -> StepResult:
    """Evaluate a training run: held-out metrics, plots, gates (recorded on the run)."""
    try:
        state = PipelineRun.resume(config, connect(config), run_id)
    except (DataError, RegistryError) as exc:
        return StepResult("evaluate", False, [f"error: {exc}"], {"run_id": run_id, "error": str(exc)})
    with state.active("evaluate"):
        decision = state.evaluate()
        state.outcome = "evaluated"
    return StepResult("evaluate", decision.passed,
                      [f"run {run_id}: {_metrics_line(state.metrics)}", *decision.summary(),
                       f"gates {'passed' if decision.passed else 'FAILED'}"],
                      {"run_id": run_id, "metrics": state.metrics, "gates": decision.to_dict()},
                      rejected=not decision.passed)


def register(config: RunConfig, run_id: str) -> StepResult:
    """Register an evaluated run's model as a new version (alias challenger) and record its gates on it."""
    try:
        state = PipelineRun.resume(config, connect(config), run_id, load_data=False)
        if state.decision is None:
            raise RegistryError(f"run {run_id} was never evaluated: run `evaluate --run-id {run_id}` first")
    except RegistryError as exc:
        return StepResult("register", False, [f"error: {exc}"], {"run_id": run_id, "error": str(exc)})
    with state.active("register"):
        version = state.register()
        state.record_gates()
        state.outcome = "registered"
    passed = state.decision.passed
    return StepResult("register", True, [f"{config.model_name} v{version} registered (alias challenger), "
                                         f"gates {'passed' if passed else 'failed'}"],
                      {"run_id": run_id, "version": version, "gates_passed": passed})


def promote(config: RunConfig, version: str | None = None) -> StepResult:
    """Move the champion alias to `version` (default: the challenger) if its gates cleared it."""
    tracking = connect(config)
    if version is None:
        challenger = registry.alias_version(tracking.client, config.model_name, registry.CHALLENGER)
        if challenger is None:
            return StepResult("promote", False, [f"{config.model_name} has no challenger to promote"])
        version = str(challenger.version)
    try:
        move = registry.promote(tracking.client, config.model_name, version, config.alias)
    except RegistryError as exc:
        return StepResult("promote", False, [f"refused: {exc}"], {"version": version, "error": str(exc)})
    line = (f"{config.model_name} {config.alias}: {_version(move.previous)} -> v{move.version}" if move.moved
            else f"{config.model_name}: {move.reason}")
    return StepResult("promote", True, [line], {"promotion": move.to_dict()})


def rollback(config: RunConfig) -> StepResult:
    """Point the champion alias back at the version the current champion replaced."""
    tracking = connect(config)
    try:
        move = registry.rollback(tracking.client, config.model_name, config.alias)
    except RegistryError as exc:
        return StepResult("rollback", False, [f"refused: {exc}"], {"error": str(exc)})
    return StepResult("rollback", True, [f"{config.model_name} {config.alias}: v{move.previous} -> v{move.version} "
                                         f"(rolled back)"], {"promotion": move.to_dict()})


def run(config: RunConfig, *, reason: str | None = None, step: str = "run") -> StepResult:
    """The whole training pipeline on one MLflow run; the champion moves only if every gate passes."""
    state = _start(config)
    try:
        with state.active(step, trigger=reason or "manual"):
            state.validate()
            state.train()
            decision = state.evaluate()
            state.register()
            state.record_gates()
            state.promote()
    except (DataValidationError, DataError) as exc:
        return _invalid(step, state, exc)
    lines = [f"run {state.run_id} ({reason or 'manual'}): {config.estimator} on {state.dataset.uri} "
             f"({state.dataset.rows} rows)",
             f"held-out: {_metrics_line(state.metrics)}", *decision.summary(),
             f"registered {config.model_name} v{state.version} (challenger)"]
    if state.promotion is not None and state.promotion.moved:
        lines.append(f"promoted: {config.alias} {_version(state.promotion.previous)} -> v{state.version}")
    elif state.promotion is not None:
        lines.append(f"unchanged: {state.promotion.reason}")
    elif state.outcome == "proposed":
        lines.append(f"proposed: v{state.version} awaits approval (promotion: manual); `shipyard approve --stack "
                     f"STACK --model {config.model_name} --version {state.version}` promotes it")
    else:
        champion = state.champion()
        lines.append(f"rejected: {config.alias} stays {f'v{champion.version}' if champion else 'unset'}")
    lines.append(describe(state.lineage))
    data = {"run_id": state.run_id, "version": state.version, "outcome": state.outcome, "metrics": state.metrics,
            "gates": decision.to_dict(), "lineage": state.lineage, "trigger": reason or "manual",
            "promotion": state.promotion.to_dict() if state.promotion else None}
    return StepResult(step, state.outcome in ("promoted", "unchanged", "proposed"), lines, data,
                      rejected=state.outcome == "rejected")


def retrain(config: RunConfig, *, reason: str) -> StepResult:
    """`run`, tagged with the reason that triggered it (drift, quality, schedule, manual...)."""
    return run(config, reason=reason, step="retrain")


def monitor(config: RunConfig, *, reason: str | None = None) -> StepResult:
    """One monitoring pass over the champion's recent traffic (see `pipelines.monitor`)."""
    try:
        outcome = run_monitor(config, reason=reason)
    except RegistryError as exc:
        return StepResult("monitor", False, [f"error: {exc}"], {"error": str(exc)})
    drift = outcome.drift or {}
    lines = [f"{outcome.model} v{outcome.version}: {outcome.rows} rows in the last "
             f"{config.monitoring.window_hours} h"]
    if outcome.drift is None:
        lines.append("no traffic for this version in the window: nothing compared")
    else:
        lines.append(f"drift: {'yes' if drift.get('drifted') else 'no'} (severity {drift.get('severity')}); "
                     f"features drifted: {', '.join(drift.get('drifted_features', [])) or 'none'}")
    lines += [f"note: {n}" for n in outcome.decision.notes]
    if outcome.decision.warranted:
        lines.append(f"retraining warranted: {outcome.decision.reason}")
        lines.append(f"retraining started: {outcome.started}" if outcome.started
                     else f"retraining not started: {outcome.decision.why_not or 'trigger failed'}")
    else:
        lines.append("retraining not warranted")
    lines.append(f"report: {outcome.reports.get('html')}")
    lines += [f"error: {e}" for e in outcome.errors]
    return StepResult("monitor", not outcome.errors, lines, outcome.to_dict())


class InlineTrigger:
    """Retrain in this process: the whole pipeline through the gates, tagged with the reason (`retrain: inline`)."""

    def __init__(self, target: str = "") -> None:
        self.target = target

    def start(self, reason: str, config: RunConfig) -> str:
        """Run `retrain` now; returns `inline:<run id>` and the outcome."""
        result = retrain(config, reason=reason)
        return f"inline:{result.data.get('run_id', '?')} ({result.data.get('outcome', 'failed')})"
