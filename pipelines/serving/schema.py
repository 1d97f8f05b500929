"""The model's input signature, enforced on parsed columns. Pure: columns in, typed columns or a problem out.

The rules follow MLflow's own schema enforcement (safe conversions only: integers into a double column,
never a fraction into an integer column, never text into a number), except that a whole-valued number
is accepted in an integer column and a JSON number in a float column, as MLflow's scoring server does.
Every refusal names the column.
Typed columns are what the scikit-learn model receives, so a prediction equals `mlflow.pyfunc`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines.serving.payload import Columns, PayloadError

#: MLflow data types the server enforces itself -> the numpy dtype the model receives (None: text).
NUMPY_TYPES: dict[str, np.dtype | None] = {
    "double": np.dtype("float64"),
    "float": np.dtype("float32"),
    "long": np.dtype("int64"),
    "integer": np.dtype("int32"),
    "boolean": np.dtype("bool"),
    "string": None,
}


@dataclass(frozen=True)
class Column:
    """One input column of a column-based signature."""

    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class InputSchema:
    """The columns a model takes, in signature order."""

    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        """Column names in signature order."""
        return [c.name for c in self.columns]


def from_signature(inputs: Any) -> InputSchema | None:
    """The schema of an MLflow signature's inputs, or None when the server cannot enforce it itself
    (no signature, tensor inputs, unnamed columns, or types such as datetime, binary, arrays, objects)."""
    if inputs is None or inputs.is_tensor_spec() or not inputs.has_input_names():
        return None
    columns = []
    for spec in inputs.inputs:
        type_name = getattr(getattr(spec, "type", None), "name", None)
        if type_name not in NUMPY_TYPES:
            return None
        columns.append(Column(spec.name, type_name, bool(getattr(spec, "required", True))))
    return InputSchema(tuple(columns))


def enforce(parsed: Columns, schema: InputSchema) -> dict[str, Any]:
    """Typed columns in signature order: extra columns are dropped, missing required ones refused."""
    missing = [c.name for c in schema.columns if c.required and c.name not in parsed.data]
    if missing:
        extra = sorted(set(parsed.data) - set(schema.names))
        hint = f"; the request has unknown column(s) {extra}" if extra else ""
        raise PayloadError(f"missing column(s) {missing} required by the model signature {schema.names}{hint}")
    return {c.name: coerce(c, parsed.data[c.name]) for c in schema.columns if c.name in parsed.data}


def coerce(column: Column, values: Any) -> Any:
    """One column's values as the model receives them: a numpy array of the signature's type,
    or a list of strings (pandas infers its text dtype from a list, as it does for MLflow)."""
    target = NUMPY_TYPES[column.type]
    if target is None:
        return _strings(column, values)
    try:
        array = np.asarray(values)
    except ValueError:
        raise PayloadError(f"column {column.name!r}: values must be scalars") from None
    if array.ndim != 1:
        raise PayloadError(f"column {column.name!r}: values must be scalars, not lists")
    kind = array.dtype.kind
    if kind == "O":
        array = _from_objects(column, array)
        kind = array.dtype.kind
    if target.kind == "b":
        if kind != "b":
            raise _wrong(column, values)
        return array
    if kind == "b" or kind not in "iuf":
        raise _wrong(column, values)
    if target.kind == "f":  # JSON numbers are doubles: a float column takes them, as MLflow's server does
        return array.astype(target, copy=False)
    if kind == "f":
        if np.isnan(array).any():
            raise PayloadError(f"column {column.name!r}: missing value in an integer column")
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.trunc(array)):
            bad = array[array != np.trunc(array)][:1].tolist() or array[~np.isfinite(array)][:1].tolist()
            raise PayloadError(f"column {column.name!r}: expected integers, got {bad[0]!r}")
    info = np.iinfo(target)
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise PayloadError(f"column {column.name!r}: value out of range for {column.type}")
    return array.astype(target)


def _from_objects(column: Column, array: np.ndarray) -> np.ndarray:
    """Mixed JSON values (numbers with nulls, huge integers, or text) -> a float array, or a refusal."""
    values = array.tolist()
    if _first_wrong(column, values) is not None:
        raise _wrong(column, values)
    if any(v is None for v in values) and column.type in ("boolean", "long", "integer"):
        raise PayloadError(f"column {column.name!r}: missing value (null) in a {column.type} column")
    if column.type in ("long", "integer"):
        raise PayloadError(f"column {column.name!r}: value out of range for {column.type}")
    return np.array([np.nan if v is None else v for v in values], dtype="float64")


def _first_wrong(column: Column, values: Any) -> Any:
    """The first value that is not of the column's kind (None counts as missing, not wrong)."""
    items = values.tolist() if isinstance(values, np.ndarray) else values
    if column.type == "boolean":
        return next((v for v in items if v is not None and not isinstance(v, bool | np.bool_)), None)
    return next((v for v in items if v is not None
                 and (isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number))), None)


def _strings(column: Column, values: Any) -> list[Any]:
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    bad = next((v for v in items if v is not None and not isinstance(v, str)
                and not (isinstance(v, float) and np.isnan(v))), None)
    if bad is not None:
        raise PayloadError(f"column {column.name!r}: expected text, got {bad!r}")
    return items


def _wrong(column: Column, values: Any) -> PayloadError:
    expected = "true/false" if column.type == "boolean" else "numbers"
    bad = _first_wrong(column, values)
    got = f", got {bad!r}" if bad is not None else ""
    return PayloadError(f"column {column.name!r}: expected {expected} ({column.type}){got}")


def to_frame(columns: dict[str, Any]) -> pd.DataFrame:
    """Typed columns -> the DataFrame handed to the model."""
    return pd.DataFrame(columns, copy=False)
