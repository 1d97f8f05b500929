"""Fixtures: small registered models in a throwaway SQLite MLflow store, and a model server app."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pipelines.demo import demo_frame

DATASET = "demo://classification?rows=600&seed=3&missing=0.05"
REGRESSION = "demo://regression?rows=400&seed=5"


@dataclass(frozen=True)
class Registry:
    """A tracking store with registered models: `churn` (classifier, v1 and v2) and `demand` (regressor)."""

    tracking_uri: str
    root: Path


def _pipeline(estimator, frame: pd.DataFrame, target: str):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in frame.columns if c.startswith("num_")]
    categorical = [c for c in frame.columns if c.startswith("cat_")]
    pre = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
        ("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                          ("encode", OneHotEncoder(handle_unknown="ignore"))]), categorical),
    ])
    X = frame.drop(columns=[target])
    return Pipeline([("pre", pre), ("model", estimator)]).fit(X, frame[target]), X


def register(tracking_uri: str, name: str, model, example: pd.DataFrame, alias: str = "champion") -> str:
    """Log `model` with the sklearn flavor (skops, trusting exactly its own types) and point `alias` at it."""
    import mlflow
    import skops.io

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=example, registered_model_name=name,
                                        skops_trusted_types=trusted, pip_requirements=["scikit-learn"])
    version = str(info.registered_model_version)
    mlflow.MlflowClient(tracking_uri).set_registered_model_alias(name, alias, version)
    return version


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Two churn versions (v1 champion) and one demand version, logged once per test session."""
    from sklearn.linear_model import LogisticRegression, Ridge

    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.MlflowClient(uri).create_experiment("serving-tests", artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment("serving-tests")
    frame = demo_frame(DATASET)
    v1, X = _pipeline(LogisticRegression(C=1.0, max_iter=500), frame, "label")
    register(uri, "churn", v1, X.head(5))
    v2, _ = _pipeline(LogisticRegression(C=0.01, max_iter=500), frame, "label")
    register(uri, "churn", v2, X.head(5), alias="challenger")
    reg = demo_frame(REGRESSION)
    ridge, Xr = _pipeline(Ridge(alpha=1.0), reg, "target")
    register(uri, "demand", ridge, Xr.head(5))
    yield Registry(uri, root)


@pytest.fixture(scope="session")
def traffic() -> pd.DataFrame:
    """Unshifted churn traffic with some missing values."""
    return demo_frame("demo://classification?rows=40&seed=99&missing=0.1").drop(columns=["label"])
