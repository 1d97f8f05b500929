"""The pipeline against real tracking servers: `mlflow server` on SQLite, and on PostgreSQL (what clouds deploy)."""

from __future__ import annotations

from pathlib import Path

from pipeline_helpers import config_document

from pipelines import registry, steps
from pipelines.config import from_dict
from pipelines.pipeline import REFERENCE_PROFILE


def test_run_through_an_mlflow_server(mlflow_server: str, workspace: Path, client_for) -> None:
    import mlflow

    config = from_dict(config_document(workspace, tracking_uri=mlflow_server, model_name="churn-server",
                                       experiment="shipyard/churn-server"))
    result = steps.run(config)
    assert result.ok, result.summary
    client = client_for(config)
    champion = registry.alias_version(client, "churn-server", "champion")
    assert str(champion.version) == result.data["version"]
    assert champion.tags[registry.TAG_GATE_PASSED] == "true"
    assert client.get_model_version_download_uri("churn-server", champion.version).startswith("mlflow-artifacts:")
    profile = mlflow.artifacts.load_dict(f"models:/churn-server@champion/extra_files/{REFERENCE_PROFILE}")
    assert profile["n_rows"] == 2000
    assert not (workspace / "mlruns").exists()  # every artifact went through the server


def test_run_and_rollback_on_postgresql(mlflow_server_postgres: str, workspace: Path, client_for) -> None:
    config = from_dict(config_document(workspace, tracking_uri=mlflow_server_postgres, model_name="churn-pg",
                                       experiment="shipyard/churn-pg"))
    assert steps.run(config).ok
    second = steps.run(config, reason="schedule")
    assert second.ok and second.data["promotion"]["previous"] == "1"
    client = client_for(config)
    assert str(registry.alias_version(client, "churn-pg", "champion").version) == "2"
    assert client.get_run(second.data["run_id"]).data.tags["shipyard.trigger"] == "schedule"
    assert steps.rollback(config).ok
    assert str(registry.alias_version(client, "churn-pg", "champion").version) == "1"
    assert client.get_registered_model("churn-pg").tags[registry.TAG_PREVIOUS_CHAMPION] == "2"
