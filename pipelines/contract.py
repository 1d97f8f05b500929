"""The contract between `infra` and `pipelines`: the run-configuration sections, defined once.

`infra/spec.py` builds its model sections from these classes (adding only what the compute never reads:
schedules, alert destinations, replica bounds...), `infra/runconfig.py` writes a `pipelines.config.RunConfig`
from them, and `pipelines.config` reads it back with the same classes. Defaults, estimator and metric names
(`pipelines.catalog`) and the default gates per task therefore live in one place.

Light by design: pydantic and the catalog only, so `shipyard validate` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from pipelines.catalog import ESTIMATORS, METRICS, Task

#: Version of the run configuration's layout; `pipelines.config` refuses a version it does not know.
RUN_CONFIG_VERSION = 1
#: The registry alias serving follows and promotion moves.
DEFAULT_ALIAS = "champion"

#: How a version that passed every gate becomes champion: at once, or after `shipyard approve` (CT proposes).
Promotion = Literal["auto", "manual"]
#: A value a hyperparameter (or a grid candidate) may take.
Scalar = float | int | str | bool | None
#: A non-empty string, surrounding whitespace removed.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class StrictModel(BaseModel):
    """Base of every section: unknown keys are errors and a validated section is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_metrics(task: Task, key: str, names: Any) -> None:
    """ValueError `'<key>.<metric>: not a <task> metric [...]'` for the first name `task` does not know."""
    known = METRICS[task]
    for metric in names:
        if metric not in known:
            raise ValueError(f"{key}.{metric}: not a {task} metric {sorted(known)}")


class SearchSpec(StrictModel):
    """An optional small hyperparameter search: parameter -> candidate values, cross-validated."""

    grid: dict[str, Annotated[list[Scalar], Field(min_length=1)]] = Field(min_length=1)
    folds: int = Field(3, ge=2, le=10)


#: Gates a model gets when its spec names none, by task.
DEFAULT_GATES: dict[Task, dict[str, Any]] = {
    "classification": {"primary_metric": "roc_auc", "minimum": {"roc_auc": 0.7}},
    "regression": {"primary_metric": "r2", "minimum": {}},
}


class GateSpec(StrictModel):
    """Quality gates a challenger must pass before it becomes champion (defaults per task: DEFAULT_GATES)."""

    primary_metric: str = "roc_auc"
    minimum: dict[str, float] = Field(default_factory=lambda: {"roc_auc": 0.7})
    maximum: dict[str, float] = Field(default_factory=dict)
    challenger_margin: float = Field(0.0, ge=0.0, le=1.0, description="How much worse than the champion is tolerated.")
    max_latency_ms: float = Field(50.0, gt=0, description="Single-row prediction latency limit.")


class PipelineSpec(StrictModel):
    """How a model is trained and gated."""

    dataset_uri: Text = Field("demo://classification", description="CSV/Parquet path or URI; demo:// is generated.")
    target_column: Text = "label"
    task: Task = "classification"
    estimator: str = "logistic_regression"
    params: dict[str, Scalar] = Field(default_factory=dict)
    search: SearchSpec | None = None
    test_size: float = Field(0.2, gt=0.0, lt=0.9)
    seed: int = 42
    gates: GateSpec = Field(default_factory=GateSpec)

    @model_validator(mode="before")
    @classmethod
    def _task_gate_defaults(cls, data: Any) -> Any:
        """Fill the gates' primary metric and minimum from the task's defaults when the spec leaves them out."""
        if isinstance(data, dict):
            defaults = DEFAULT_GATES.get(data.get("task", "classification"))
            gates = data.get("gates")
            gates = {} if gates is None else gates
            if defaults is not None and isinstance(gates, dict):
                data = {**data, "gates": {**defaults, **gates}}
        return data

    @field_validator("estimator")
    @classmethod
    def _estimator(cls, value: str, info: ValidationInfo) -> str:
        if value not in ESTIMATORS:
            raise ValueError(f"unknown estimator {value!r}; choose one of {sorted(ESTIMATORS)}")
        task = info.data.get("task")
        if task and ESTIMATORS[value].task != task:
            raise ValueError(f"{value!r} is a {ESTIMATORS[value].task} estimator but task is {task!r}")
        return value

    @field_validator("gates")
    @classmethod
    def _gate_metrics(cls, value: GateSpec, info: ValidationInfo) -> GateSpec:
        task = info.data.get("task")
        if task is None:
            return value
        known = METRICS[task]
        if value.primary_metric not in known:
            raise ValueError(f"primary_metric: {value.primary_metric!r} is not a {task} metric {sorted(known)}")
        check_metrics(task, "minimum", value.minimum)
        check_metrics(task, "maximum", value.maximum)
        return value


class ServingSettings(StrictModel):
    """What the compute needs of a model's serving: which registered model and which alias it serves."""

    registered_model: str | None = Field(None, description="Registry model name; defaults to the model's name.")
    alias: Text = DEFAULT_ALIAS


class MonitoringSettings(StrictModel):
    """What a monitor run reads: the window, the drift thresholds, the quality floors, whether to retrain.

    A new monitoring setting the compute reads is one field here: the spec, its JSON schema and the run
    configuration pick it up from this class.
    """

    window_hours: int = Field(24, ge=1, le=24 * 30)
    covariate_threshold: float = Field(0.2, gt=0, description="PSI at which a drifted feature is major.")
    prior_threshold: float = Field(0.1, gt=0, description="PSI at which drifted predictions (or labels) are major.")
    significance: float = Field(0.01, gt=0, lt=0.5, description="False-discovery rate over all features' tests.")
    covariate_effect_threshold: float = Field(
        0.04, gt=0, le=1, description="Effect at which a drifted feature is major: the share of rows that moved (KS "
        "distance for numbers, total variation for categories).")
    prior_effect_threshold: float = Field(
        0.1, gt=0, description="Relative change of a class's share (predictions, or labels) at which prior drift is "
        "major.")
    min_window_rows: int = Field(
        30, ge=1, description="Rows (and labelled rows) under which nothing is tested: the report says too little "
        "data.")
    min_quality: dict[str, float] = Field(default_factory=dict, description="Metric floors once labels arrive.")
    retrain_on_drift: bool = True


def check_quality_metrics(monitoring: MonitoringSettings, pipeline_task: Task | None) -> MonitoringSettings:
    """`monitoring` when its quality floors name metrics of the task; ValueError naming the first that does not."""
    if pipeline_task is not None:
        check_metrics(pipeline_task, "min_quality", monitoring.min_quality)
    return monitoring
