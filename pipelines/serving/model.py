"""Loading a registered model version and predicting with it.

Fast path: a model with the scikit-learn flavor and a column-based signature of scalar types is loaded
with `mlflow.sklearn.load_model`, the signature is enforced by `pipelines.serving.schema`, and the
estimator's own predict function (the one pyfunc would call) runs on the typed frame: the predictions
equal `mlflow.pyfunc`'s, without pyfunc's per-call schema machinery. Any other model is served through
`mlflow.pyfunc`, whose schema errors become 400s.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.serving import schema as schema_mod
from pipelines.serving.payload import Columns, PayloadError

log = logging.getLogger("pipelines.serving")


@dataclass
class ServedModel:
    """One loaded model version and how to predict with it. Immutable once built; swapped whole."""

    name: str
    version: str
    alias: str
    run_id: str
    flavor: str
    predict_frame: Callable[[pd.DataFrame], Any]
    schema: schema_mod.InputSchema | None
    batchable: bool
    input_example: pd.DataFrame | None = None
    loaded_at: float = field(default_factory=time.time)
    workdir: Any = None

    def prepare(self, parsed: Columns) -> dict[str, Any]:
        """The request's columns as the model takes them; a PayloadError names what is wrong."""
        if self.schema is not None:
            return schema_mod.enforce(parsed, self.schema)
        return parsed.data

    def predict(self, columns: dict[str, Any]) -> Any:
        """Predictions for prepared columns (numpy array, or a DataFrame/list from a pyfunc model)."""
        return self.predict_frame(schema_mod.to_frame(columns))

    def validate(self) -> int:
        """Predict the version's input example through the serving path; returns its row count."""
        if self.input_example is None:
            return 0
        frame = self.input_example
        parsed = Columns({str(c): frame[c].to_numpy() for c in frame.columns}, len(frame))
        predictions = self.predict(self.prepare(parsed))
        if len(predictions) != len(frame):
            raise RuntimeError(f"version {self.version} gave {len(predictions)} predictions for "
                               f"{len(frame)} example rows")
        return len(frame)


def resolve_version(client: Any, name: str, alias: str) -> str | None:
    """The version `alias` points at, or None when the model or alias does not exist (yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def load_version(tracking_uri: str, name: str, version: str, alias: str, *, fast: bool = True) -> ServedModel:
    """Download and load `models:/<name>/<version>`; `fast=False` forces the pyfunc path."""
    import mlflow
    from mlflow.models import Model

    workdir = tempfile.TemporaryDirectory(prefix=f"serve-{name}-{version}-")
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}",
                                                dst_path=workdir.name, tracking_uri=tracking_uri)
    meta = Model.load(local)
    pyfunc_conf = meta.flavors.get("python_function", {})
    input_schema = schema_mod.from_signature(meta.signature.inputs if meta.signature else None)
    try:
        example = meta.load_input_example(local)
    except Exception:  # an unreadable example only costs the validation step
        example = None
    common = dict(name=name, version=str(version), alias=alias, run_id=meta.run_id or "",
                  input_example=example if isinstance(example, pd.DataFrame) else None, workdir=workdir)
    if fast and "sklearn" in meta.flavors and pyfunc_conf.get("loader_module") == "mlflow.sklearn" \
            and input_schema is not None:
        import mlflow.sklearn
        from sklearn.base import is_classifier

        estimator = mlflow.sklearn.load_model(local)
        predict_fn = pyfunc_conf.get("predict_fn", "predict")
        # Class labels do not change with the rows predicted beside them; float outputs of BLAS-backed
        # models can differ in the last bits with the batch's size, so only label predictions are batched.
        batchable = predict_fn == "predict" and is_classifier(estimator)
        return ServedModel(flavor="sklearn", predict_frame=getattr(estimator, predict_fn), schema=input_schema,
                           batchable=batchable, **common)
    pyfunc_model = mlflow.pyfunc.load_model(local)
    return ServedModel(flavor="pyfunc", predict_frame=_pyfunc_predict(pyfunc_model), schema=None,
                       batchable=False, **common)


def _pyfunc_predict(model: Any) -> Callable[[pd.DataFrame], Any]:
    from mlflow.exceptions import MlflowException

    def predict(frame: pd.DataFrame) -> Any:
        try:
            return model.predict(frame)
        except MlflowException as exc:
            raise PayloadError(exc.message) from None

    return predict


def rows_of(predictions: Any, start: int, stop: int) -> Any:
    """Rows [start, stop) of a prediction result, for splitting a batch back into requests."""
    if isinstance(predictions, pd.DataFrame | pd.Series):
        return predictions.iloc[start:stop]
    return predictions[start:stop]


def jsonable(predictions: Any) -> Any:
    """Predictions as MLflow's scoring server returns them: a list, DataFrames as records."""
    if isinstance(predictions, pd.DataFrame):
        return predictions.to_dict(orient="records")
    if isinstance(predictions, pd.Series):
        return predictions.tolist()
    if isinstance(predictions, np.ndarray):
        return predictions if predictions.dtype.kind in "iufb" else predictions.tolist()
    return list(predictions)
