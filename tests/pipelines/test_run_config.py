"""The run configuration: what infra writes, pipelines reads; errors name the key; env overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_helpers import PROJECT, config_document

from infra.runconfig import pipeline_config
from infra.spec import ModelSpec, PlatformSpec
from infra.stackfile import load_stack
from pipelines.config import ConfigError, RunConfig, from_dict, load_config

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (PROJECT / "stacks").glob("Pulumi.*.yaml"))


def _written(spec: PlatformSpec, model: ModelSpec, retrain: str = "inline") -> dict:
    return pipeline_config(spec, model, tracking_uri="http://127.0.0.1:5000", inference_log_uri="s3://b/logs",
                           reports_uri="s3://b/reports", sinks=["stdout", "prometheus:/tmp/m.prom"], retrain=retrain)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_model_config_loads(stack: str, tmp_path: Path) -> None:
    loaded = load_stack(stack, project_dir=PROJECT)
    for model in loaded.spec.models:
        document = _written(loaded.spec, model)
        path = tmp_path / f"{model.name}.json"
        path.write_text(json.dumps(document))
        config = load_config(str(path), env={})
        assert config.model_name == model.registered_model
        assert config.estimator == model.pipeline.estimator
        assert config.gates.primary_metric == model.pipeline.gates.primary_metric
        assert config.monitoring.window_hours == model.monitoring.window_hours
        # nothing lost or renamed on the way: every key infra writes comes back with the same value
        assert {k: v for k, v in config.to_dict().items() if k in document} == document


def test_defaults_match_the_spec_defaults() -> None:
    spec = PlatformSpec(target="local", models=[ModelSpec(name="m")])
    written = _written(spec, spec.models[0], retrain="none")
    minimal = from_dict({"model_name": "m", "tracking_uri": "http://127.0.0.1:5000"}).to_dict()
    for key in ("dataset_uri", "target_column", "task", "estimator", "params", "search", "test_size", "seed",
                "gates", "monitoring", "alias", "retrain"):
        assert minimal[key] == written[key], key


def test_every_trigger_syntax_infra_documents_is_accepted() -> None:
    for retrain in ("none", "inline", "kubernetes-job:ml/churn-train", "sagemaker-pipeline:churn-retrain"):
        assert from_dict({"model_name": "m", "tracking_uri": "x", "retrain": retrain}).retrain == retrain


@pytest.mark.parametrize(("change", "key"), [
    ({"model_name": None}, "model_name"),
    ({"tracking_uri": ""}, "tracking_uri"),
    ({"version": 2}, "version"),
    ({"task": "ranking"}, "task"),
    ({"estimator": "xgboost"}, "estimator"),
    ({"estimator": "ridge"}, "estimator"),
    ({"test_size": 0.95}, "test_size"),
    ({"seed": "seven"}, "seed"),
    ({"gates": {"primary_metric": "rmse"}}, "gates.primary_metric"),
    ({"gates": {"minimum": {"r2": 0.5}}}, "gates.minimum.r2"),
    ({"gates": {"max_latency_ms": 0}}, "gates.max_latency_ms"),
    ({"monitoring": {"significance": 0.7}}, "monitoring.significance"),
    ({"monitoring": {"retrain_on_drift": "yes"}}, "monitoring.retrain_on_drift"),
    ({"search": {"grid": {}}}, "search.grid"),
    ({"search": {"grid": {"C": []}}}, "search.grid.C"),
    ({"sinks": "stdout"}, "sinks"),
    ({"retrain": "kubernetes-job:no-namespace"}, "retrain"),
    ({"retrain": "carrier-pigeon"}, "retrain"),
    ({"colour": "blue"}, "colour"),
    ({"gates": {"colour": "blue"}}, "gates.colour"),
    ({"search": {"grid": {"C": [1.0]}, "colour": "blue"}}, "search.colour"),
    ({"monitoring": {"min_quality": {"r2": 0.5}}}, "monitoring.min_quality.r2"),
    ({"seed": "7"}, "seed"),  # strict, as JSON: a number written as text is refused
    ({"sinks": ["stdout", ""]}, "sinks[1]"),
])
def test_invalid_settings_name_their_key(change: dict, key: str, tmp_path: Path) -> None:
    document = {**config_document(tmp_path), **change}
    with pytest.raises(ConfigError) as caught:
        from_dict(document)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")


def test_sources_and_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    document = config_document(tmp_path)
    del document["tracking_uri"]
    path.write_text(json.dumps(document))
    env = {"SHIPYARD_RUN_CONFIG": str(path), "MLFLOW_TRACKING_URI": "http://mlflow:5000",
           "SHIPYARD_DATASET_URI": "s3://data/churn.parquet", "SHIPYARD_SEED": "7", "SHIPYARD_TEST_SIZE": "0.3",
           "SHIPYARD_SINKS": "stdout, prometheus:/x.prom"}
    config = load_config(None, env=env)
    assert config.tracking_uri == "http://mlflow:5000"  # MLFLOW_TRACKING_URI fills a missing tracking_uri
    assert (config.dataset_uri, config.seed, config.test_size) == ("s3://data/churn.parquet", 7, 0.3)
    assert config.sinks == ["stdout", "prometheus:/x.prom"]
    explicit = load_config(None, env={**env, "SHIPYARD_TRACKING_URI": "sqlite:///x.db"})
    assert explicit.tracking_uri == "sqlite:///x.db"  # SHIPYARD_TRACKING_URI wins over MLFLOW_TRACKING_URI


def test_environment_alone_is_a_configuration() -> None:
    config = load_config(None, env={"SHIPYARD_MODEL_NAME": "demand", "SHIPYARD_TRACKING_URI": "http://m:5000",
                                    "SHIPYARD_TASK": "regression", "SHIPYARD_ESTIMATOR": "ridge",
                                    "SHIPYARD_TARGET_COLUMN": "target"})
    assert isinstance(config, RunConfig)
    assert (config.task, config.gates.primary_metric, config.experiment_name) == ("regression", "r2", "demand")


def test_unreadable_documents_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.json"), env={})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(str(bad), env={})
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={"SHIPYARD_MODEL_NAME": "m"})
    assert caught.value.key == "tracking_uri"


def test_require_names_the_missing_key() -> None:
    config = from_dict({"model_name": "m", "tracking_uri": "x"})
    with pytest.raises(ConfigError, match="inference_log_uri: is required for monitor"):
        config.require("inference_log_uri", "monitor")


def test_config_from_an_object_store_uri() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/configs/run.json", json.dumps({"model_name": "m", "tracking_uri": "http://m:5000"}).encode())
    assert load_config("memory://configs/run.json", env={}).model_name == "m"


def test_cli_prints_the_key_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.__main__ import main

    path = tmp_path / "run.json"
    path.write_text(json.dumps({**config_document(tmp_path), "gates": {"primary_metric": "rmse"}}))
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "gates.primary_metric" in err
    assert "Traceback" not in err


def test_an_unknown_setting_names_the_known_ones_of_its_section() -> None:
    with pytest.raises(ConfigError) as caught:
        from_dict({"model_name": "m", "tracking_uri": "x", "search": {"grid": {"C": [1.0]}, "fold": 3}})
    assert caught.value.message == "unknown setting; known: folds, grid"
