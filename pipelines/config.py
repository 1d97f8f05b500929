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
from typing import Any, get_args

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from pipelines.catalog import parse_trigger
from pipelines.contract import (
    DEFAULT_ALIAS,
    RUN_CONFIG_VERSION,
    MonitoringSettings,
    PipelineSpec,
    Promotion,
    Text,
    check_quality_metrics,
)
from pipelines.storage import read_bytes

ENV_CONFIG = "SHIPYARD_RUN_CONFIG"
ENV_PREFIX = "SHIPYARD_"


class ConfigError(Exception):
    """A missing or invalid setting; `key` is its path in the run configuration."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


class RunConfig(PipelineSpec):
    """Everything a pipeline step needs to know about one model: its pipeline section plus where things are."""

    version: int = RUN_CONFIG_VERSION
    platform: Text = "shipyard"
    environment: Text = "dev"
    model_name: Text
    alias: Text = DEFAULT_ALIAS
    experiment: str = ""
    tracking_uri: Text
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    inference_log_uri: Text | None = None
    reports_uri: Text | None = None
    sinks: list[Text] = Field(default_factory=lambda: ["stdout"])
    retrain: Text = "none"
    #: 'manual': a version that passed every gate is proposed (tagged awaiting approval); only approval promotes.
    promotion: Promotion = "auto"

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != RUN_CONFIG_VERSION:
            raise ValueError(f"layout version {value} is not supported (this code reads {RUN_CONFIG_VERSION}); "
                             "upgrade the pipelines package")
        return value

    @field_validator("experiment", mode="before")
    @classmethod
    def _no_experiment(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("inference_log_uri", "reports_uri", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("monitoring")
    @classmethod
    def _quality_metrics(cls, value: MonitoringSettings, info: ValidationInfo) -> MonitoringSettings:
        return check_quality_metrics(value, info.data.get("task"))

    @field_validator("retrain")
    @classmethod
    def _retrain(cls, value: str) -> str:
        parse_trigger(value)
        return value

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
        return self.model_dump(mode="json")


def _key(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key


def config_error(error: ValidationError) -> ConfigError:
    """The first of pydantic's errors as a ConfigError naming its key path (a rule's sub-path folded in)."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    head, sep, rest = message.partition(": ")
    if sep and head and " " not in head and "'" not in head:
        loc, message = (*loc, *head.split(".")), rest
    key = _key(loc)
    if first["type"] == "missing":
        message = "is required" + (f" (set it in the run configuration or ${ENV_PREFIX}{key.upper()})"
                                   if key in ENV_KEYS else "")
    elif first["type"] == "extra_forbidden":
        known = sorted(_fields_at(RunConfig, loc[:-1]))
        message = "unknown setting" + (f"; known: {', '.join(known)}" if known else "")
    return ConfigError(key, message)


def _fields_at(annotation: Any, loc: tuple[Any, ...]) -> set[str]:
    """The setting names of the section at `loc` (through optional sections), for naming the known ones."""
    fields = getattr(annotation, "model_fields", None)
    if fields is None:
        return set().union(*(_fields_at(arg, loc) for arg in get_args(annotation)))
    if not loc:
        return set(fields)
    return _fields_at(fields[loc[0]].annotation, loc[1:]) if loc[0] in fields else set()


def from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Validate a run-configuration document and build the RunConfig; ConfigError names the first bad key.

    Strict: a number written as text or `"yes"` for true is refused, as in JSON itself.
    """
    try:
        return RunConfig.model_validate(dict(data), strict=True)
    except ValidationError as exc:
        raise config_error(exc) from None


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
