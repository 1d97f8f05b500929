"""Training: one scikit-learn Pipeline (preprocessing + estimator), so what is registered is what is served.

Numeric features: median imputation and scaling; categorical features: a constant for missing values and
one-hot encoding that ignores unseen categories. The estimator and its parameters come from the run
configuration (names in `pipelines.catalog.ESTIMATORS`); an optional grid search picks parameters by
cross-validation on the training split. Seeds are fixed: the same data and configuration give the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.catalog import ESTIMATORS
from pipelines.config import ConfigError, RunConfig
from pipelines.plugins import resolve
from pipelines.validation import column_kind

#: Primary metric -> scikit-learn scorer name used by the grid search.
SCORERS: dict[str, str] = {
    "accuracy": "accuracy", "roc_auc": "roc_auc", "f1": "f1", "log_loss": "neg_log_loss",
    "rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error", "r2": "r2",
}
#: Scorers that need the multiclass variant when there are more than two classes.
_MULTICLASS_SCORERS = {"roc_auc": "roc_auc_ovr", "f1": "f1_macro"}


@dataclass(frozen=True)
class Features:
    """The feature columns, by kind, in training order."""

    numeric: list[str]
    categorical: list[str]

    @property
    def columns(self) -> list[str]:
        """Every feature column, numeric first."""
        return [*self.numeric, *self.categorical]


@dataclass
class Split:
    """The training and held-out evaluation data."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


@dataclass
class TrainedModel:
    """A fitted pipeline and what went into it."""

    pipeline: Any
    features: Features
    split: Split
    params: dict[str, Any]
    search: dict[str, Any] | None = field(default=None)


def infer_features(frame: pd.DataFrame, target_column: str) -> Features:
    """Numeric and categorical feature columns of a training frame."""
    numeric, categorical = [], []
    for name in frame.columns:
        if name == target_column:
            continue
        (numeric if column_kind(frame[name]) == "numeric" else categorical).append(str(name))
    return Features(numeric=numeric, categorical=categorical)


def prepare_features(frame: pd.DataFrame, features: Features) -> pd.DataFrame:
    """The feature columns in training order, numeric ones as float64 (so missing values are representable)."""
    X = frame[features.columns].copy()
    for name in features.numeric:
        if X[name].dtype != np.float64:
            X[name] = X[name].astype(np.float64)
    return X


def _estimator_class(name: str) -> type:
    return resolve(ESTIMATORS[name].cls)


def make_estimator(config: RunConfig, overrides: dict[str, Any] | None = None) -> Any:
    """The configured estimator: catalog defaults, then the spec's params, then `overrides`; seeded."""
    entry = ESTIMATORS[config.estimator]
    cls = _estimator_class(config.estimator)
    known = set(cls().get_params())
    params = {**entry.defaults, **config.params, **(overrides or {})}
    for name in params:
        if name not in known:
            raise ConfigError(f"params.{name}",
                              f"not a parameter of {cls.__name__} (known: {', '.join(sorted(known))})")
    if entry.seed_param and entry.seed_param not in config.params:
        params[entry.seed_param] = config.seed
    return cls(**params)


def build_pipeline(config: RunConfig, features: Features) -> Any:
    """The unfitted preprocessing + estimator pipeline."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline([
        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
        ("encode", OneHotEncoder(handle_unknown="ignore")),
    ])
    transformers = []
    if features.numeric:
        transformers.append(("numeric", numeric, features.numeric))
    if features.categorical:
        transformers.append(("categorical", categorical, features.categorical))
    return Pipeline([("preprocess", ColumnTransformer(transformers)), ("model", make_estimator(config))])


def split_data(frame: pd.DataFrame, config: RunConfig, features: Features) -> Split:
    """The seeded held-out split; stratified by class for classification."""
    from sklearn.model_selection import train_test_split

    X = prepare_features(frame, features)
    y = frame[config.target_column]
    stratify = y if config.task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=config.test_size, random_state=config.seed,
                                                        stratify=stratify)
    return Split(X_train, X_test, y_train, y_test)


def _scorer(config: RunConfig, classes: int) -> str:
    metric = config.gates.primary_metric
    if classes > 2 and metric in _MULTICLASS_SCORERS:
        return _MULTICLASS_SCORERS[metric]
    return SCORERS[metric]


def _search(pipeline: Any, config: RunConfig, split: Split) -> tuple[Any, dict[str, Any]]:
    from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

    assert config.search is not None
    folds = config.search.folds
    cv = (StratifiedKFold(folds, shuffle=True, random_state=config.seed) if config.task == "classification"
          else KFold(folds, shuffle=True, random_state=config.seed))
    known = set(_estimator_class(config.estimator)().get_params())
    for name in config.search.grid:
        if name not in known:
            raise ConfigError(f"search.grid.{name}", f"not a parameter of {config.estimator}")
    grid = {f"model__{name}": values for name, values in config.search.grid.items()}
    search = GridSearchCV(pipeline, grid, cv=cv, n_jobs=1, refit=True,
                          scoring=_scorer(config, int(split.y_train.nunique())))
    search.fit(split.X_train, split.y_train)
    best = {key.removeprefix("model__"): value for key, value in search.best_params_.items()}
    result = {"best_params": best, "best_score": float(search.best_score_), "scoring": search.scoring,
              "folds": folds, "candidates": len(search.cv_results_["params"])}
    return search.best_estimator_, result


def train_model(frame: pd.DataFrame, config: RunConfig) -> TrainedModel:
    """Split, fit (with the optional grid search) and return the fitted pipeline."""
    features = infer_features(frame, config.target_column)
    split = split_data(frame, config, features)
    pipeline = build_pipeline(config, features)
    search = None
    if config.search is not None:
        pipeline, search = _search(pipeline, config, split)
    else:
        pipeline.fit(split.X_train, split.y_train)
    params = {k: v for k, v in pipeline.named_steps["model"].get_params().items()
              if isinstance(v, str | int | float | bool) or v is None}
    return TrainedModel(pipeline=pipeline, features=features, split=split, params=params, search=search)
