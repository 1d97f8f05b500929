"""The names the pipelines understand: estimators and metrics by task, each metric's direction, retrain triggers,
the data-quality gauge every target alerts on.

Pure data, no heavy imports: `infra/spec.py` validates the platform spec against these same tables, and
`METRICS` is the one place that says whether a higher or a lower value of a metric is better (the gates,
the monitor's quality check and every target's quality alerts all ask `higher_is_better` / `is_worse`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")


@dataclass(frozen=True)
class EstimatorEntry:
    """One estimator: its task, the scikit-learn class (`module:Class`) and defaults the spec may override."""

    task: Task
    cls: str
    defaults: dict[str, Any] = field(default_factory=dict)
    #: Name of the estimator's seed parameter, set from the run's seed (None: deterministic already).
    seed_param: str | None = "random_state"


#: Estimators by name. `defaults` keep fits quick and single-threaded on shared machines.
ESTIMATORS: dict[str, EstimatorEntry] = {
    "logistic_regression": EstimatorEntry("classification", "sklearn.linear_model:LogisticRegression",
                                          {"max_iter": 1000}),
    "random_forest_classifier": EstimatorEntry("classification", "sklearn.ensemble:RandomForestClassifier",
                                               {"n_estimators": 100, "n_jobs": 1}),
    "hist_gradient_boosting_classifier": EstimatorEntry("classification",
                                                        "sklearn.ensemble:HistGradientBoostingClassifier"),
    "ridge": EstimatorEntry("regression", "sklearn.linear_model:Ridge", seed_param=None),
    "random_forest_regressor": EstimatorEntry("regression", "sklearn.ensemble:RandomForestRegressor",
                                              {"n_estimators": 100, "n_jobs": 1}),
    "hist_gradient_boosting_regressor": EstimatorEntry("regression", "sklearn.ensemble:HistGradientBoostingRegressor"),
}

#: Metrics by task, and whether a higher value is better. A metric name belongs to exactly one task.
METRICS: dict[Task, dict[str, bool]] = {
    "classification": {"accuracy": True, "roc_auc": True, "f1": True, "log_loss": False},
    "regression": {"rmse": False, "mae": False, "r2": True},
}

_HIGHER_IS_BETTER: dict[str, bool] = {name: higher for table in METRICS.values() for name, higher in table.items()}


def higher_is_better(metric: str) -> bool:
    """Whether a higher value of `metric` is better (KeyError for a metric no task knows)."""
    return _HIGHER_IS_BETTER[metric]


def worse_operator(metric: str) -> Literal["<", ">"]:
    """The comparison `value OP bound` that holds exactly when `value` is worse than `bound`."""
    return "<" if higher_is_better(metric) else ">"


def is_worse(metric: str, value: float, bound: float) -> bool:
    """Whether `value` of `metric` is strictly worse than `bound` (NaN is never worse: it is not measurable)."""
    return value < bound if higher_is_better(metric) else value > bound


#: Trigger name -> the class implementing it. The adapters live next to the cloud code that needs them.
TRIGGERS: dict[str, str] = {
    "inline": "pipelines.steps:InlineTrigger",
    "kubernetes-job": "pipelines.adapters.kubernetes_job:KubernetesJobTrigger",
    "sagemaker-pipeline": "pipelines.adapters.aws:SageMakerPipelineTrigger",
    "gcp-workflow": "pipelines.adapters.gcp:WorkflowsTrigger",
    "container-apps-job": "pipelines.adapters.azure:ContainerAppsJobTrigger",
}
#: Triggers whose `<target>` part is required.
_TRIGGER_NEEDS_TARGET = {"kubernetes-job", "sagemaker-pipeline", "gcp-workflow", "container-apps-job"}


def parse_trigger(value: str) -> tuple[str, str] | None:
    """`(name, target)` of a `retrain` value, None for `none`; ValueError for an unknown or incomplete one."""
    if value == "none":
        return None
    name, _, target = value.partition(":")
    if name not in TRIGGERS:
        raise ValueError(f"unknown retrain trigger {name!r}; choose none or one of {sorted(TRIGGERS)}")
    if name in _TRIGGER_NEEDS_TARGET and not target:
        raise ValueError(f"{name!r} needs a target: '{name}:<target>'")
    if name == "kubernetes-job" and "/" not in target:
        raise ValueError("kubernetes-job needs '<namespace>/<cronjob>'")
    return name, target


#: The monitor's gauge of how many columns of the window have data-quality problems: every target alerts on it
#: (notifying, never retraining). `pipelines.drift.DriftReport.metrics` writes it.
DATA_QUALITY_METRIC = "shipyard_data_quality_problems"
