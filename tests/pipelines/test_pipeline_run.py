"""The whole training pipeline on a SQLite tracking store: lineage, gates, promotion, rollback, crashes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pipeline_helpers import DATASET

from pipelines import registry, steps
from pipelines.__main__ import main
from pipelines.data import read_dataset
from pipelines.demo import demo_frame
from pipelines.lineage import package_info
from pipelines.pipeline import DATA_PROFILE, GATES_ARTIFACT, REFERENCE_PROFILE, VALIDATION_ARTIFACT


def _champion(client, name: str = "churn") -> str | None:
    version = registry.alias_version(client, name, "champion")
    return None if version is None else str(version.version)


def _artifacts(client, run_id: str, path: str = "") -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path or None):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_run_registers_a_champion_with_full_lineage(make_config, client_for, monkeypatch) -> None:
    import mlflow

    monkeypatch.setenv("SHIPYARD_GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    config = make_config()
    result = steps.run(config)
    assert result.ok, result.summary
    assert result.data["outcome"] == "promoted" and result.exit_code == 0
    client = client_for(config)
    assert _champion(client) == "1"
    assert str(registry.alias_version(client, "churn", registry.CHALLENGER).version) == "1"

    version = client.get_model_version("churn", "1")
    tags = version.tags
    assert tags["git.commit"] == "0123456789abcdef0123456789abcdef01234567"
    # the running package's hash (test_lineage checks it is the wheel builder's hash of the same tree)
    assert tags["package.hash"] == package_info().content_hash
    assert tags["package.version"] == f"0.1.0+{package_info().content_hash[:12]}"
    assert tags["dataset.uri"] == DATASET
    assert tags["dataset.hash"] == read_dataset(DATASET).content_hash
    assert tags["dataset.rows"] == "2000"
    assert tags[registry.TAG_GATE_PASSED] == "true" and tags[registry.TAG_PREVIOUS_CHAMPION] == "none"
    assert {tags["gate.thresholds"], tags["gate.champion"], tags["gate.model_validation"]} == {"pass"}

    run = client.get_run(version.run_id)
    assert {k: run.data.tags[k] for k in ("git.commit", "package.hash", "dataset.hash")} == \
        {k: tags[k] for k in ("git.commit", "package.hash", "dataset.hash")}
    assert run.data.params["estimator"] == "logistic_regression" and run.data.params["model.C"] == "1.0"
    assert run.data.metrics["roc_auc"] > 0.75 and {"accuracy", "f1", "log_loss"} <= set(run.data.metrics)
    assert run.data.tags["shipyard.trigger"] == "manual" and run.data.tags["shipyard.outcome"] == "promoted"
    assert run.inputs.dataset_inputs[0].dataset.digest == tags["dataset.hash"][:32]
    assert {VALIDATION_ARTIFACT, GATES_ARTIFACT, "evaluation/confusion_matrix.png", "evaluation/roc_curve.png"} \
        <= _artifacts(client, run.info.run_id)
    report = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/{VALIDATION_ARTIFACT}")
    assert report["passed"] and report["rows"] == 2000

    # the model version carries signature, input example and the reference profiles monitoring compares against
    model = mlflow.pyfunc.load_model("models:/churn@champion")
    assert model.metadata.get_input_schema().input_names() == [*(f"num_{i}" for i in range(6)), "cat_0", "cat_1"]
    assert model.input_example is not None and len(model.input_example) == 5
    profile = mlflow.artifacts.load_dict(f"models:/churn@champion/extra_files/{REFERENCE_PROFILE}")
    assert profile["n_rows"] == 2000 and set(profile["features"]) == {*(f"num_{i}" for i in range(6)), "cat_0",
                                                                       "cat_1"}
    assert mlflow.artifacts.load_dict(f"models:/churn@champion/extra_files/{DATA_PROFILE}")["rows"] == 2000


def test_bad_data_stops_the_pipeline_with_a_report(make_config, client_for, workspace: Path) -> None:
    import mlflow

    config = make_config()
    assert steps.run(config).ok
    bad = demo_frame("demo://classification?rows=1000&seed=9").drop(columns=["num_1"])
    bad["num_3"] = "n/a"
    bad.loc[:50, "num_0"] = -1e9
    bad.to_csv(workspace / "bad.csv", index=False)
    result = steps.run(make_config(dataset_uri=str(workspace / "bad.csv")))
    assert not result.ok and result.exit_code == 1 and result.data["outcome"] == "invalid-data"
    assert set(result.data["validation"]["failing_columns"]) == {"num_0", "num_1", "num_3"}
    client = client_for(config)
    assert [str(v.version) for v in client.search_model_versions("name='churn'")] == ["1"]  # nothing registered
    run = client.get_run(result.data["run_id"])
    assert run.info.status == "FAILED" and run.data.tags["data.valid"] == "false"
    report = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/{VALIDATION_ARTIFACT}")
    assert set(report["failing_columns"]) == {"num_0", "num_1", "num_3"}
    assert any("num_1" in line for line in result.summary)


def test_regression_run_logs_residuals(make_config, client_for) -> None:
    config = make_config(model_name="demand", experiment="shipyard/demand", task="regression",
                         dataset_uri="demo://regression?rows=1500&seed=11", target_column="target", estimator="ridge",
                         params={"alpha": 1.0}, gates={"primary_metric": "r2", "minimum": {"r2": 0.6},
                                                       "maximum": {"rmse": 50.0}, "max_latency_ms": 5000.0})
    result = steps.run(config)
    assert result.ok, result.summary
    client = client_for(config)
    run_id = result.data["run_id"]
    assert "evaluation/residuals.png" in _artifacts(client, run_id)
    assert {"rmse", "mae", "r2"} <= set(client.get_run(run_id).data.metrics)
    assert _champion(client, "demand") == "1"


def test_degraded_challenger_is_rejected_and_rollback_restores_the_previous_champion(
        make_config, client_for, workspace: Path) -> None:
    config = make_config()
    client = client_for(config)
    assert steps.run(config).ok
    assert _champion(client) == "1"

    shuffled = demo_frame(DATASET)
    shuffled["label"] = np.random.default_rng(0).permutation(shuffled["label"].to_numpy())
    shuffled.to_csv(workspace / "shuffled.csv", index=False)
    degraded = steps.run(make_config(dataset_uri=str(workspace / "shuffled.csv")), reason="drift")
    assert not degraded.ok and degraded.rejected and degraded.exit_code == 3
    assert degraded.data["outcome"] == "rejected" and degraded.data["trigger"] == "drift"
    failed = [g["gate"] for g in degraded.data["gates"]["gates"] if not g["passed"]]
    assert failed == ["thresholds"]
    assert _champion(client) == "1"
    assert client.get_model_version("churn", "2").tags[registry.TAG_GATE_PASSED] == "false"
    refused = steps.promote(config, "2")
    assert not refused.ok and "gates failed" in refused.summary[0]
    assert _champion(client) == "1"

    assert steps.run(config).ok  # an equally good challenger, within the margin
    assert _champion(client) == "3"
    assert client.get_model_version("churn", "3").tags[registry.TAG_PREVIOUS_CHAMPION] == "1"
    back = steps.rollback(config)
    assert back.ok and back.data["promotion"]["version"] == "1"
    assert _champion(client) == "1"


def test_weaker_challenger_fails_the_champion_gate(make_config, client_for) -> None:
    lax = {"primary_metric": "roc_auc", "minimum": {"roc_auc": 0.5}, "challenger_margin": 0.01,
           "max_latency_ms": 5000.0}
    config = make_config(gates=lax)
    client = client_for(config)
    assert steps.run(config).ok
    stump = make_config(gates=lax, estimator="random_forest_classifier",
                        params={"n_estimators": 1, "max_depth": 1})
    result = steps.run(stump)
    assert result.rejected
    gates = {g["gate"]: g for g in result.data["gates"]["gates"]}
    assert gates["thresholds"]["passed"] and not gates["champion"]["passed"]
    check = gates["champion"]["checks"][0]
    assert check["value"] < check["threshold"]  # challenger's roc_auc below champion's minus the margin
    assert _champion(client) == "1"


def test_a_crash_between_register_and_promote_leaves_the_registry_consistent(
        make_config, client_for, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config()
    client = client_for(config)

    def killed(*args, **kwargs):
        raise RuntimeError("process killed between register and promote")

    monkeypatch.setattr(registry, "promote", killed)
    with pytest.raises(RuntimeError, match="killed"):
        steps.run(config)
    monkeypatch.undo()
    assert _champion(client) is None  # nothing promoted
    crashed = client.search_model_versions("name='churn'")[0]
    assert client.get_run(crashed.run_id).info.status == "FAILED"

    rerun = steps.run(config)
    assert rerun.ok and rerun.data["version"] == "2"
    assert _champion(client) == "2"
    stale = steps.promote(config, "1")  # v1's gates compared against "no champion": stale now
    assert not stale.ok and "rerun the pipeline" in stale.summary[0]
    assert _champion(client) == "2"


def test_steps_one_by_one_through_the_cli(make_config, workspace: Path, capsys, client_for) -> None:
    config = make_config()
    path = workspace / "run.json"
    path.write_text(json.dumps(config.to_dict()))

    def step(*argv: str) -> tuple[int, dict]:
        code = main([*argv, "--config", str(path), "--json"])
        return code, json.loads(capsys.readouterr().out)

    code, validated = step("validate-data")
    assert code == 0 and validated["validation"]["passed"]
    code, trained = step("train")
    assert code == 0 and trained["model_uri"].startswith("models:/")
    run_id = trained["run_id"]
    code, registered = step("register", "--run-id", run_id)
    assert code == 1 and "never evaluated" in registered["error"]
    code, evaluated = step("evaluate", "--run-id", run_id)
    assert code == 0 and evaluated["gates"]["passed"] and evaluated["metrics"]["roc_auc"] > 0.75
    code, registered = step("register", "--run-id", run_id)
    assert code == 0 and registered["version"] == "1" and registered["gates_passed"]
    code, promoted = step("promote")
    assert code == 0 and promoted["promotion"] == {"alias": "champion", "version": "1", "previous": None,
                                                   "moved": True, "reason": "gates passed"}
    assert _champion(client_for(config)) == "1"
    assert main(["run", "--config", str(path)]) == 0
    human = capsys.readouterr().out
    assert "promoted: champion v1 -> v2" in human and "gate thresholds: pass" in human
