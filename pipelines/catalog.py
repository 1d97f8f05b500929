"""The names the pipelines understand: estimators and metrics, by task.

Pure data, no heavy imports, so configuration checks stay fast. `infra/spec.py` holds the same
names for the platform spec; a test keeps the two tables identical.
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

#: Metrics by task, and whether a higher value is better.
METRICS: dict[Task, dict[str, bool]] = {
    "classification": {"accuracy": True, "roc_auc": True, "f1": True, "log_loss": False},
    "regression": {"rmse": False, "mae": False, "r2": True},
}


def higher_is_better(task: Task, metric: str) -> bool:
    """Whether a higher value of `metric` is better (KeyError for a metric the task does not know)."""
    return METRICS[task][metric]
