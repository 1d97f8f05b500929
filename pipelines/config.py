"""The run configuration: one JSON document per model, as `infra/runconfig.py: pipeline_config` writes it.

Sources, later ones winning:
1. the JSON document at `--config PATH_OR_URI`, or at `$SHIPYARD_RUN_CONFIG` (a path or any fsspec URI);
2. `$MLFLOW_TRACKING_URI`, only when the document gives no `tracking_uri`;
3. `SHIPYARD_<KEY>` for each top-level scalar key (`SHIPYARD_TRACKING_URI`, `SHIPYARD_DATASET_URI`, ...),
   and `SHIPYARD_SINKS` as a comma-separated list.

Every missing or invalid setting raises `ConfigError` naming the key (`gates.primary_metric: ...`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.catalog import ESTIMATORS, METRICS, TASKS, Task

#: Layout version this code reads (`infra/runconfig.py: RUN_CONFIG_VERSION`).
RUN_CONFIG_VERSION = 1
ENV_CONFIG = "SHIPYARD_RUN_CONFIG"
ENV_PREFIX = "SHIPYARD_"

#: Gates when a document gives none, by task.
_DEFAULT_GATES: dict[str, dict[str, Any]] = {
    "classification": {"primary_metric": "roc_auc", "minimum": {"roc_auc": 0.7}},
    "regression": {"primary_metric": "r2", "minimum": {}},
}


class ConfigError(Exception):
    """A missing or invalid setting; `key` is its path in the run configuration."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True)
class SearchConfig:
    """A small grid search: parameter -> candidate values, and the number of cross-validation folds."""

    grid: dict[str, list[Any]]
    folds: int = 3


@dataclass(frozen=True)
class GateConfig:
    """Quality gates: absolute bounds, the champion comparison and the latency limit."""

    primary_metric: str = "roc_auc"
    minimum: dict[str, float] = field(default_factory=dict)
    maximum: dict[str, float] = field(default_factory=dict)
    challenger_margin: float = 0.0
    max_latency_ms: float = 50.0


@dataclass(frozen=True)
class MonitoringConfig:
    """Drift and quality monitoring of the served model."""

    window_hours: int = 24
    #: PSI at which a drifted feature is major.
    covariate_threshold: float = 0.2
    #: PSI at which drifted predictions (or labels) are major.
    prior_threshold: float = 0.1
    #: False-discovery rate over all features' tests.
    significance: float = 0.01
    min_quality: dict[str, float] = field(default_factory=dict)
    retrain_on_drift: bool = True
    #: Effect at which a drifted feature is major: the share of rows that moved (KS distance for numbers, total
    #: variation for categories).
    covariate_effect_threshold: float = 0.04
    #: Relative change of a class's share (predictions, or labels) at which prior drift is major.
    prior_effect_threshold: float = 0.1
    #: Rows (and labelled rows) under which nothing is tested: the report says too little data.
    min_window_rows: int = 30


@dataclass(frozen=True)
class RunConfig:
    """Everything a pipeline step needs to know about one model."""

    model_name: str
    tracking_uri: str
    version: int = RUN_CONFIG_VERSION
    platform: str = "shipyard"
    environment: str = "dev"
    alias: str = "champion"
    experiment: str = ""
    dataset_uri: str = "demo://classification"
    target_column: str = "label"
    task: Task = "classification"
    estimator: str = "logistic_regression"
    params: dict[str, Any] = field(default_factory=dict)
    search: SearchConfig | None = None
    test_size: float = 0.2
    seed: int = 42
    gates: GateConfig = field(default_factory=GateConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    inference_log_uri: str | None = None
    reports_uri: str | None = None
    sinks: list[str] = field(default_factory=lambda: ["stdout"])
    retrain: str = "none"

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment: `experiment`, or the registered model's name."""
        return self.experiment or self.model_name

    def require(self, key: str, purpose: str) -> str:
        """The value of an optional top-level string key that `purpose` needs; ConfigError when unset."""
        value = getattr(self, key)
        if not value:
            raise ConfigError(key, f"is required for {purpose} (set it in the run configuration "
                                   f"or ${ENV_PREFIX}{key.upper()})")
        return value

    def to_dict(self) -> dict[str, Any]:
        """The configuration as the JSON document it was read from (plain types)."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------- typed readers

def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"must be a non-empty string (got {value!r})")
    return value.strip()


def _optional_string(key: str, value: Any) -> str | None:
    return None if value is None or value == "" else _string(key, value)


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(key, f"must be an integer (got {value!r})")
    return int(value)


def _float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"must be a number (got {value!r})")
    return float(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false (got {value!r})")
    return value


def _mapping(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(key, f"must be a mapping (got {type(value).__name__})")
    return value


def _metric_bounds(key: str, value: Any, task: str) -> dict[str, float]:
    bounds = {}
    for metric, bound in _mapping(key, value).items():
        if metric not in METRICS[task]:
            raise ConfigError(f"{key}.{metric}", f"not a {task} metric {sorted(METRICS[task])}")
        bounds[metric] = _float(f"{key}.{metric}", bound)
    return bounds


def _range(key: str, value: float, low: float, high: float, *, low_open: bool = False,
           high_open: bool = False) -> float:
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise ConfigError(key, f"must be in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'} "
                               f"(got {value})")
    return value


def _known_keys(key: str, data: Mapping[str, Any], known: set[str]) -> None:
    for name in data:
        if name not in known:
            where = f"{key}.{name}" if key else name
            raise ConfigError(where, f"unknown setting; known: {', '.join(sorted(known))}")


# --------------------------------------------------------------------------------------------- section parsers

def _search(value: Any) -> SearchConfig | None:
    if value is None:
        return None
    data = _mapping("search", value)
    _known_keys("search", data, {"grid", "folds"})
    grid = _mapping("search.grid", data.get("grid"))
    if not grid:
        raise ConfigError("search.grid", "must name at least one parameter")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"search.grid.{name}", "must be a non-empty list of values")
    folds = _int("search.folds", data.get("folds", 3))
    return SearchConfig(grid={k: list(v) for k, v in grid.items()}, folds=int(_range("search.folds", folds, 2, 10)))


def _gates(value: Any, task: str) -> GateConfig:
    data = {**_DEFAULT_GATES[task], **_mapping("gates", value if value is not None else {})}
    _known_keys("gates", data, {"primary_metric", "minimum", "maximum", "challenger_margin", "max_latency_ms"})
    primary = _string("gates.primary_metric", data["primary_metric"])
    if primary not in METRICS[task]:
        raise ConfigError("gates.primary_metric", f"{primary!r} is not a {task} metric {sorted(METRICS[task])}")
    margin = _float("gates.challenger_margin", data.get("challenger_margin", 0.0))
    latency = _float("gates.max_latency_ms", data.get("max_latency_ms", 50.0))
    return GateConfig(
        primary_metric=primary,
        minimum=_metric_bounds("gates.minimum", data.get("minimum", {}), task),
        maximum=_metric_bounds("gates.maximum", data.get("maximum", {}), task),
        challenger_margin=_range("gates.challenger_margin", margin, 0.0, 1.0),
        max_latency_ms=_range("gates.max_latency_ms", latency, 0.0, float("inf"), low_open=True),
    )


def _monitoring(value: Any, task: str) -> MonitoringConfig:
    data = _mapping("monitoring", value if value is not None else {})
    known = {"window_hours", "covariate_threshold", "prior_threshold", "significance", "min_quality",
             "retrain_on_drift", "covariate_effect_threshold", "prior_effect_threshold", "min_window_rows"}
    _known_keys("monitoring", data, known)
    default = MonitoringConfig()
    hours = _int("monitoring.window_hours", data.get("window_hours", default.window_hours))
    return MonitoringConfig(
        window_hours=int(_range("monitoring.window_hours", hours, 1, 24 * 30)),
        covariate_threshold=_range("monitoring.covariate_threshold", _float(
            "monitoring.covariate_threshold", data.get("covariate_threshold", default.covariate_threshold)),
            0.0, float("inf"), low_open=True),
        prior_threshold=_range("monitoring.prior_threshold", _float(
            "monitoring.prior_threshold", data.get("prior_threshold", default.prior_threshold)),
            0.0, float("inf"), low_open=True),
        significance=_range("monitoring.significance", _float(
            "monitoring.significance", data.get("significance", default.significance)),
            0.0, 0.5, low_open=True, high_open=True),
        min_quality=_metric_bounds("monitoring.min_quality", data.get("min_quality", {}), task),
        retrain_on_drift=_bool("monitoring.retrain_on_drift", data.get("retrain_on_drift", True)),
        covariate_effect_threshold=_range("monitoring.covariate_effect_threshold", _float(
            "monitoring.covariate_effect_threshold",
            data.get("covariate_effect_threshold", default.covariate_effect_threshold)), 0.0, 1.0, low_open=True),
        prior_effect_threshold=_range("monitoring.prior_effect_threshold", _float(
            "monitoring.prior_effect_threshold", data.get("prior_effect_threshold", default.prior_effect_threshold)),
            0.0, float("inf"), low_open=True),
        min_window_rows=int(_range("monitoring.min_window_rows", _int(
            "monitoring.min_window_rows", data.get("min_window_rows", default.min_window_rows)), 1, float("inf"))),
    )


def _sinks(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError("sinks", f"must be a list of sink names (got {value!r})")
    return [_string(f"sinks[{i}]", sink) for i, sink in enumerate(value)]


def _retrain(value: Any) -> str:
    from pipelines.triggers import parse_trigger

    text = _string("retrain", value)
    try:
        parse_trigger(text)
    except ValueError as exc:
        raise ConfigError("retrain", str(exc)) from None
    return text


def from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Validate a run-configuration document and build the RunConfig; ConfigError names the first bad key."""
    known = {f for f in RunConfig.__dataclass_fields__}
    _known_keys("", data, known)
    version = _int("version", data.get("version", RUN_CONFIG_VERSION))
    if version != RUN_CONFIG_VERSION:
        raise ConfigError("version", f"layout version {version} is not supported (this code reads "
                                     f"{RUN_CONFIG_VERSION}); upgrade the pipelines package")
    for key in ("model_name", "tracking_uri"):
        if data.get(key) in (None, ""):
            raise ConfigError(key, f"is required (set it in the run configuration or ${ENV_PREFIX}{key.upper()})")
    task = _string("task", data.get("task", "classification"))
    if task not in TASKS:
        raise ConfigError("task", f"must be one of {list(TASKS)} (got {task!r})")
    estimator = _string("estimator", data.get("estimator", "logistic_regression"))
    if estimator not in ESTIMATORS:
        raise ConfigError("estimator", f"unknown estimator {estimator!r}; choose one of {sorted(ESTIMATORS)}")
    if ESTIMATORS[estimator].task != task:
        raise ConfigError("estimator", f"{estimator!r} is a {ESTIMATORS[estimator].task} estimator "
                                       f"but task is {task!r}")
    test_size = _range("test_size", _float("test_size", data.get("test_size", 0.2)), 0.0, 0.9,
                       low_open=True, high_open=True)
    return RunConfig(
        version=version,
        platform=_string("platform", data.get("platform", "shipyard")),
        environment=_string("environment", data.get("environment", "dev")),
        model_name=_string("model_name", data["model_name"]),
        alias=_string("alias", data.get("alias", "champion")),
        experiment=_optional_string("experiment", data.get("experiment")) or "",
        tracking_uri=_string("tracking_uri", data["tracking_uri"]),
        dataset_uri=_string("dataset_uri", data.get("dataset_uri", "demo://classification")),
        target_column=_string("target_column", data.get("target_column", "label")),
        task=task,  # type: ignore[arg-type]
        estimator=estimator,
        params=dict(_mapping("params", data.get("params") or {})),
        search=_search(data.get("search")),
        test_size=test_size,
        seed=_int("seed", data.get("seed", 42)),
        gates=_gates(data.get("gates"), task),
        monitoring=_monitoring(data.get("monitoring"), task),
        inference_log_uri=_optional_string("inference_log_uri", data.get("inference_log_uri")),
        reports_uri=_optional_string("reports_uri", data.get("reports_uri")),
        sinks=_sinks(data.get("sinks", ["stdout"])),
        retrain=_retrain(data.get("retrain", "none")),
    )


# -------------------------------------------------------------------------------------------------- loading

def _env_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


#: Top-level keys settable one by one from `SHIPYARD_<KEY>`, and how their text is read.
ENV_KEYS: dict[str, Callable[[str], Any]] = {
    "version": int, "platform": str, "environment": str, "model_name": str, "alias": str,
    "experiment": str, "tracking_uri": str, "dataset_uri": str, "target_column": str, "task": str,
    "estimator": str, "test_size": float, "seed": int, "inference_log_uri": str,
    "reports_uri": str, "retrain": str, "sinks": _env_list,
}


def _read_document(source: str) -> dict[str, Any]:
    from pipelines.storage import read_bytes

    try:
        raw = read_bytes(source)
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigError("config", f"cannot read {source}: {exc}") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError("config", f"{source} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("config", f"{source} must hold a JSON object")
    return data


def merged_document(source: str | None = None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The document from `source` (or $SHIPYARD_RUN_CONFIG) with the environment's overrides applied."""
    env = os.environ if env is None else env
    source = source or env.get(ENV_CONFIG) or None
    data = _read_document(source) if source else {}
    if not data.get("tracking_uri") and env.get("MLFLOW_TRACKING_URI"):
        data["tracking_uri"] = env["MLFLOW_TRACKING_URI"]
    for key, parse in ENV_KEYS.items():
        text = env.get(ENV_PREFIX + key.upper())
        if text is None or text == "":
            continue
        try:
            data[key] = parse(text)
        except ValueError:
            raise ConfigError(key, f"${ENV_PREFIX}{key.upper()}={text!r} is not valid") from None
    return data


def load_config(source: str | None = None, env: Mapping[str, str] | None = None) -> RunConfig:
    """The validated run configuration from `source`, $SHIPYARD_RUN_CONFIG and the environment."""
    return from_dict(merged_document(source, env))
