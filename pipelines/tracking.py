"""MLflow session helpers: connect once per step, quietly, and find the experiment.

MLflow is imported here, lazily, so `python -m pipelines --help` and configuration errors stay fast.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from pipelines.config import RunConfig

#: Loggers whose INFO chatter (table creation, migrations, "registered model") drowns a step's summary.
_CHATTY_LOGGERS = ("mlflow", "alembic", "urllib3", "botocore", "httpx")


def quiet() -> None:
    """Keep MLflow's informational logging and known-harmless warnings out of step output; errors still show."""
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # skops is our choice of safe format; MLflow's hint about pickle does not apply.
    warnings.filterwarnings("ignore", message=".*Saving scikit-learn models in the pickle.*")
    # We declare every numeric feature as double, so this hint about integer columns is moot.
    warnings.filterwarnings("ignore", message=".*Hint: Inferred schema contains integer column.*")


@dataclass
class Tracking:
    """An MLflow connection for one configuration."""

    mlflow: Any
    client: MlflowClient
    experiment_id: str


def connect(config: RunConfig) -> Tracking:
    """Point MLflow at the configuration's tracking server and make sure its experiment exists."""
    import mlflow
    from mlflow.exceptions import MlflowException

    quiet()  # after the import: importing mlflow configures its own logger

    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)
    client = mlflow.MlflowClient(config.tracking_uri, registry_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name(config.experiment_name)
    if experiment is None:
        try:
            experiment_id = client.create_experiment(config.experiment_name)
        except MlflowException as exc:  # created concurrently
            if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment_id = client.get_experiment_by_name(config.experiment_name).experiment_id
    else:
        experiment_id = experiment.experiment_id
    return Tracking(mlflow=mlflow, client=client, experiment_id=experiment_id)


def load_json_artifact(mlflow: Any, uri: str) -> dict[str, Any] | None:
    """A JSON artifact's content, or None when it does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.artifacts.load_dict(uri)
    except (MlflowException, OSError, FileNotFoundError):
        return None
