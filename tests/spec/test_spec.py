"""The spec's rules, one failing case each, and the loader's overlays, defaults and located errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra.merge import deep_merge, with_defaults
from infra.problems import format_path
from infra.spec import PlatformSpec
from infra.stackfile import SpecError, load_stack, stack_file_schema
from pipelines.catalog import ESTIMATORS

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def write_stack(tmp_path: Path, config: dict[str, Any], shared: dict[str, Any] | None = None) -> Path:
    """A throwaway project with a stack file (and optionally a shared spec); returns the stack file."""
    (tmp_path / "Pulumi.yaml").write_text("name: shipyard\nruntime: python\n")
    stacks = tmp_path / "stacks"
    stacks.mkdir(exist_ok=True)
    if shared is not None:
        (stacks / "shipyard.yaml").write_text(yaml.safe_dump(shared))
    path = stacks / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump({"config": {f"shipyard:{k}": v for k, v in config.items()}}))
    return path


def problems_of(tmp_path: Path, config: dict[str, Any], shared: dict[str, Any] | None = None) -> dict[str, str]:
    """Validate and return {key path: message}; fails the test if the stack is valid."""
    write_stack(tmp_path, config, shared)
    with pytest.raises(SpecError) as caught:
        load_stack("test", project_dir=tmp_path)
    return {p.path: p.message for p in caught.value.problems}


MINIMAL = {"target": "kubernetes", "models": [{"name": "churn"}]}


def model(**sections: Any) -> dict[str, Any]:
    return {**MINIMAL, "models": [{"name": "churn", **sections}]}


@pytest.mark.parametrize(
    ("config", "path", "fragment"),
    [
        (model(serving={"min_replicas": 3, "max_replicas": 2}), "models[0].serving.max_replicas",
         "must be >= min_replicas (3)"),
        ({**MINIMAL, "training": {"min_nodes": 4, "max_nodes": 2}}, "training.max_nodes", "must be >= min_nodes (4)"),
        ({**MINIMAL, "training": {"size": "gpu"}}, "training.gpu_count", "needs gpu_count >= 1"),
        ({**MINIMAL, "training": {"size": "small", "gpu_count": 1}}, "training.gpu_count", "needs training.size 'gpu'"),
        ({**MINIMAL, "training": {"schedule": "daily"}}, "training.schedule", "expected five fields"),
        (model(monitoring={"schedule": "* * *"}), "models[0].monitoring.schedule", "expected five fields"),
        (model(pipeline={"estimator": "xgboost"}), "models[0].pipeline.estimator", "unknown estimator"),
        (model(pipeline={"estimator": "ridge"}), "models[0].pipeline.estimator", "regression estimator"),
        (model(pipeline={"gates": {"minimum": {"rmse": 1.0}}}), "models[0].pipeline.gates.minimum.rmse",
         "not a classification metric"),
        (model(pipeline={"gates": {"primary_metric": "r2"}}), "models[0].pipeline.gates.primary_metric",
         "not a classification metric"),
        ({**MINIMAL, "models": [{"name": "Churn_1"}]}, "models[0].name", "lowercase"),
        ({**MINIMAL, "models": [{"name": "a"}, {"name": "a"}]}, "models", "appears twice"),
        ({**MINIMAL, "models": []}, "models", "at least 1"),
        ({"target": "aws", "models": [{"name": "a"}]}, "region", "required for target 'aws'"),
        ({**MINIMAL, "aws": {}}, "aws", "only applies when target is 'aws'"),
        ({**MINIMAL, "target": "mainframe"}, "target", "'local', 'kubernetes', 'aws', 'gcp' or 'azure'"),
        ({**MINIMAL, "environment": "qa"}, "environment", "'dev', 'staging' or 'prod'"),
        ({**MINIMAL, "networking": {"allowed_cidrs": ["everyone"]}}, "networking.allowed_cidrs[0]", "not an IPv4 CIDR"),
        (model(serving={"max_replica": 3}), "models[0].serving.max_replica", "did you mean 'max_replicas'?"),
        ({**MINIMAL, "trainig": {}}, "trainig", "did you mean 'training'?"),
        ({**MINIMAL, "registry": {"database": {"external_url": "postgresql://u:hunter2@db/mlflow"}}},
         "registry.database.external_url", "plaintext secrets are refused"),
        ({**MINIMAL, "registry": {"database": {"external_url": {"secure": "x", "ref": "y"}}}},
         "registry.database.external_url", "exactly one"),
        (model(monitoring={"alerts": [{"kind": "webhook"}]}), "models[0].monitoring.alerts[0]", "needs 'url'"),
        (model(monitoring={"alerts": [{"kind": "email", "address": "nobody"}]}), "models[0].monitoring.alerts[0]",
         "needs 'address'"),
        (model(serving={"target_cpu_utilization": 5}), "models[0].serving.target_cpu_utilization",
         "greater than or equal to 10"),
        ({"models": [{"name": "a"}]}, "target", "is required"),
        ({**MINIMAL, "training": {"schedule": "99 25 * * *"}}, "training.schedule", "'99' is outside 0-59"),
        ({**MINIMAL, "training": {"schedule": "*/0 * * * *"}}, "training.schedule", "step must be >= 1"),
        (model(pipeline={"task": "regression", "estimator": "ridge", "target_column": "y"},
               monitoring={"min_quality": {"roc_auc": 0.8}}), "models[0].monitoring.min_quality.roc_auc",
         "not a regression metric"),
        ({**MINIMAL, "registry": {"database": {"storage_gb": 10}}}, "registry.database.storage_gb",
         "greater than or equal to 20"),
    ],
)
def test_each_rule_names_its_key_path(tmp_path: Path, config: dict[str, Any], path: str, fragment: str) -> None:
    problems = problems_of(tmp_path, config)
    assert path in problems, problems
    assert fragment in problems[path]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config = {
        "target": "kubernetes",
        "trainig": {},
        "models": [{"name": "a", "serving": {"min_replicas": 2, "max_replicas": 1}, "monitoring": {"schedule": "x"}}],
    }
    problems = problems_of(tmp_path, config)
    assert set(problems) == {"trainig", "models[0].serving.max_replicas", "models[0].monitoring.schedule"}


def test_problem_names_the_file_the_bad_key_came_from(tmp_path: Path) -> None:
    shared = {"models": [{"name": "a", "serving": {"max_replicas": 0}}], "training": {"schedule": "bad"}}
    path = write_stack(tmp_path, {"target": "kubernetes", "training": {"schedule": "also bad"}}, shared)
    with pytest.raises(SpecError) as caught:
        load_stack("test", project_dir=tmp_path)
    files = {p.path: Path(p.file).name for p in caught.value.problems}
    assert files["training.schedule"] == path.name  # the overlay's value is the one validated
    assert files["models[0].serving.max_replicas"] == "shipyard.yaml"


def test_stack_file_shape_errors_are_located(tmp_path: Path) -> None:
    write_stack(tmp_path, MINIMAL)
    path = tmp_path / "stacks" / "Pulumi.test.yaml"
    path.write_text("config:\n  target: kubernetes\nconfg: {}\n")
    with pytest.raises(SpecError) as caught:
        load_stack("test", project_dir=tmp_path)
    messages = [(p.path, p.message) for p in caught.value.problems]
    assert ("target", "config keys need a namespace: 'shipyard:target'") in messages
    assert ("confg", "unknown top-level key; did you mean 'config'?") in messages
    path.write_text("config: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML: line"):
        load_stack("test", project_dir=tmp_path)
    with pytest.raises(SpecError, match="no such stack file"):
        load_stack("missing", project_dir=tmp_path)


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    overlay = {"a": {"c": [3]}, "e": 2}
    assert deep_merge(base, overlay) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # untouched


def test_prod_defaults_are_safer_than_dev_and_stay_overridable() -> None:
    dev = PlatformSpec.model_validate(with_defaults({}, {**MINIMAL, "environment": "dev"})[0])
    prod = PlatformSpec.model_validate(with_defaults({}, {**MINIMAL, "environment": "prod"})[0])
    assert (dev.protect, prod.protect) == (False, True)
    assert not dev.registry.database.high_availability and prod.registry.database.high_availability
    assert prod.registry.database.backup_retention_days > dev.registry.database.backup_retention_days
    assert prod.models[0].serving.min_replicas >= 2 > dev.models[0].serving.min_replicas
    assert prod.training.spot is False
    chosen = PlatformSpec.model_validate(with_defaults({}, {**MINIMAL, "environment": "prod", "protect": False})[0])
    assert chosen.protect is False


def test_secrets_carry_their_source_path() -> None:
    merged = with_defaults({}, {**MINIMAL, "registry": {"database": {"external_url": {"secure": "v1:abc"}}}})[0]
    spec = PlatformSpec.model_validate(merged)
    assert spec.registry.database.external_url is not None
    assert spec.registry.database.external_url.source == "registry.database.external_url"


def test_every_repo_stack_is_valid_and_five_lines_are_enough() -> None:
    for stack in STACKS:
        loaded = load_stack(stack, project_dir=ROOT)
        assert loaded.spec.models, stack
    assert len((ROOT / "stacks" / "Pulumi.local.yaml").read_text().splitlines()) <= 5


def test_schema_accepts_repo_stacks_and_rejects_typos() -> None:
    schema = stack_file_schema()
    for stack in STACKS:
        jsonschema.validate(yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"config": {"shipyard:trainig": {}}}, schema)
    jsonschema.validate({"config": {"aws:region": "eu-west-1", "shipyard:target": "aws"}}, schema)


def test_format_path() -> None:
    assert format_path(("models", 0, "serving", "max_replicas")) == "models[0].serving.max_replicas"


def test_estimator_table_covers_both_tasks() -> None:
    assert {entry.task for entry in ESTIMATORS.values()} == {"classification", "regression"}


def test_cli_reports_located_errors_without_traceback(tmp_path: Path) -> None:
    path = write_stack(tmp_path, model(serving={"min_replicas": 2, "max_replicas": 1}))
    run = subprocess.run([sys.executable, "-m", "infra.cli", "validate", "--config", str(path)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1
    assert f"{path}: models[0].serving.max_replicas: must be >= min_replicas (2)" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_cli_schema_is_json() -> None:
    run = subprocess.run([sys.executable, "-m", "infra.cli", "schema"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0
    assert "shipyard:models" in json.loads(run.stdout)["properties"]["config"]["properties"]


def test_pulumi_secrets_belong_in_the_stack_file(tmp_path: Path) -> None:
    shared = {"registry": {"database": {"external_url": {"secure": "v1:abc"}}}}
    problems = problems_of(tmp_path, MINIMAL, shared)
    assert "encrypted per stack" in problems["registry.database.external_url"]


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "stacks" / "stack.schema.json").read_text())
    assert committed == stack_file_schema(), "regenerate: shipyard schema > stacks/stack.schema.json"


def test_a_regression_model_gets_regression_gates_that_the_pipelines_accept() -> None:
    from infra.runconfig import pipeline_config
    from pipelines.config import from_dict

    merged = with_defaults({}, model(pipeline={"task": "regression", "estimator": "ridge", "target_column": "y"}))[0]
    spec = PlatformSpec.model_validate(merged)
    gates = spec.models[0].pipeline.gates
    assert gates.primary_metric == "r2" and "roc_auc" not in gates.minimum
    document = pipeline_config(spec, spec.models[0], tracking_uri="http://127.0.0.1:5000", inference_log_uri="/tmp/i",
                               reports_uri="/tmp/r", sinks=["stdout"], retrain="none")
    assert from_dict(document).gates.primary_metric == "r2"
