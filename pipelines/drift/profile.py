"""The reference profile: a JSON-serializable summary of the training data that monitoring compares against.

Stored with each model version. Layout (`PROFILE_VERSION` 1):

```
{"version": 1, "task": "classification", "n_rows": 10000, "target_column": "label",
 "features": {"<name>": <distribution>, ...},
 "prediction": <distribution> | null,   # the model's predictions on the reference rows
 "label": <distribution> | null,        # the target column
 "quality": {"accuracy": 0.91}}         # predictions vs target on the reference rows, when both are known
```

A numeric distribution (`kind: "numeric"`) holds a quantile grid of the non-missing values (`grid`: the
reference quantiles at 1/G, 2/G, ..., deduplicated, G = `grid_points`), `counts` of values in the bins
`(-inf, grid[0]], (grid[0], grid[1]], ..., (grid[-1], +inf)`, the `missing` count, the PSI bin edges (`psi_edges`:
the deciles, a subset of the grid) and mean, std, min, max. The grid gives the reference CDF for the KS statistic
at every grid point and, summed, the reference share of each PSI bin.

A column of text whose values are numbers (at least `NUMERIC_TEXT_SHARE` of its present values parse) is profiled
as numeric, marked `"text": true`; the few cells that do not parse count as missing.

A categorical distribution (`kind: "categorical"`) holds the `categories` (the most frequent reference values, at
most `max_categories`) and `counts` of each, then of every other value (`other`), then of missing values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

PROFILE_VERSION = 1

#: Columns of an inference log that are never features.
RESERVED_COLUMNS = frozenset({"prediction", "_timestamp", "_model_version", "_request_id", "_request_row"})

#: Fine quantile grid size: the KS statistic is resolved to about 1 / GRID_POINTS.
GRID_POINTS = 500

#: PSI bins per numeric feature (quantile bins of the reference).
PSI_BINS = 10

#: Numeric columns sorted together when profiling.
_BLOCK_COLUMNS = 16

#: Categories kept per categorical feature; the rest share the `other` bucket.
MAX_CATEGORIES = 50

#: Share of a text column's present values that must parse as numbers for it to be profiled as numeric.
NUMERIC_TEXT_SHARE = 0.99


def is_numeric(series: pd.Series) -> bool:
    """Whether a column holds numbers (not booleans) by its type."""
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def parse_numbers(series: pd.Series) -> np.ndarray:
    """A column of any type read as float64: text parsed (surrounding blanks ignored), NaN where it is no number."""
    text = series.astype("string").str.strip()
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def is_numeric_text(series: pd.Series) -> bool:
    """Whether a text (or mixed) column holds numbers: at least `NUMERIC_TEXT_SHARE` of its present values parse."""
    if not (pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)):
        return False
    present = series.dropna()
    return len(present) > 0 and np.count_nonzero(~np.isnan(parse_numbers(present))) >= NUMERIC_TEXT_SHARE * len(present)


def numeric_distribution(values: np.ndarray, *, grid_points: int = GRID_POINTS) -> dict[str, Any]:
    """Profile of numeric values (NaN = missing); see the module docstring for the layout."""
    return _from_sorted(np.sort(np.asarray(values, dtype=np.float64)), grid_points)


def _from_sorted(ordered: np.ndarray, grid_points: int) -> dict[str, Any]:
    """`numeric_distribution` of values already sorted (NaN last)."""
    n = len(ordered)
    n_valid = n if n == 0 or not np.isnan(ordered[-1]) else n - int(np.count_nonzero(np.isnan(ordered)))
    valid = ordered[:n_valid]
    finite = valid if n_valid == 0 or np.isfinite(valid[[0, -1]]).all() else valid[np.isfinite(valid)]
    if n_valid:
        # Inverted-CDF quantiles (data points) by integer arithmetic; the decile edges are made grid points.
        steps = np.arange(1, grid_points, dtype=np.int64)
        deciles = np.arange(1, PSI_BINS, dtype=np.int64)
        psi_edges = np.unique(valid[np.maximum((n_valid * deciles + PSI_BINS - 1) // PSI_BINS - 1, 0)])
        grid = np.unique(
            np.concatenate([valid[np.maximum((n_valid * steps + grid_points - 1) // grid_points - 1, 0)], psi_edges])
        )
        psi_edges, grid = psi_edges[np.isfinite(psi_edges)], grid[np.isfinite(grid)]
    else:
        grid = psi_edges = np.empty(0)
    below_or_at = np.searchsorted(valid, grid, side="right")
    counts = np.diff(np.concatenate([[0], below_or_at, [n_valid]]))
    described = len(finite) > 0
    return {
        "kind": "numeric",
        "n": n,
        "missing": n - n_valid,
        "grid": grid.tolist(),
        "counts": counts.tolist(),
        "psi_edges": psi_edges.tolist(),
        "mean": float(finite.mean()) if described else None,
        "std": float(finite.std()) if described else None,
        "min": float(finite[0]) if described else None,
        "max": float(finite[-1]) if described else None,
    }


def numeric_distributions(frame: pd.DataFrame, names: list[str]) -> dict[str, dict[str, Any]]:
    """`numeric_distribution` of several columns, sorted a block of columns at a time (bounded extra memory)."""
    out = {}
    for start in range(0, len(names), _BLOCK_COLUMNS):
        chunk = names[start : start + _BLOCK_COLUMNS]
        block = frame[chunk].to_numpy(dtype=np.float64, na_value=np.nan)
        ordered = np.sort(np.asfortranarray(block), axis=0)  # NaN last; columns contiguous
        out.update((name, _from_sorted(ordered[:, j], GRID_POINTS)) for j, name in enumerate(chunk))
    return out


def plain_value(value: Any) -> Any:
    """A category as a JSON value: numpy scalars to Python ones, anything exotic to its string."""
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, str | int | float | bool) else str(value)


def value_counts(series: pd.Series) -> tuple[np.ndarray, list[Any], int]:
    """(counts per distinct value, the distinct values as Python scalars, missing count) of a column."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    per_code = np.bincount(codes + 1, minlength=len(uniques) + 1)
    return per_code[1:], uniques.tolist(), int(per_code[0])


def categorical_distribution(series: pd.Series, *, max_categories: int = MAX_CATEGORIES) -> dict[str, Any]:
    """Profile of a categorical column; see the module docstring for the layout."""
    counts, uniques, missing = value_counts(series)
    order = np.argsort(-counts, kind="stable")[:max_categories]
    kept = order[counts[order] > 0]
    return {
        "kind": "categorical",
        "n": len(series),
        "categories": [plain_value(uniques[i]) for i in kept],
        "counts": [*counts[kept].tolist(), int(counts.sum() - counts[kept].sum()), missing],
    }


def distribution(series: pd.Series, *, kind: str | None = None) -> dict[str, Any]:
    """Profile of one column, numeric or categorical (by dtype unless `kind` says)."""
    kind = kind or ("numeric" if is_numeric(series) else "categorical")
    if kind == "numeric":
        return numeric_distribution(series.to_numpy(dtype=np.float64, na_value=np.nan))
    return categorical_distribution(series)


def quality(task: str, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Simple quality metrics of predictions against labels: accuracy, or rmse / mae / r2 for regression."""
    if len(labels) == 0:
        return {}
    if task == "classification":
        return {"accuracy": float(np.mean(np.asarray(predictions) == np.asarray(labels)))}
    error = np.asarray(predictions, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
    spread = float(np.var(np.asarray(labels, dtype=np.float64)))
    mse = float(np.mean(error**2))
    return {
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - mse / spread if spread > 0 else 0.0,
    }


def _target_kind(task: str) -> str:
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', not {task!r}")
    return "categorical" if task == "classification" else "numeric"


def feature_columns(frame: pd.DataFrame, target_column: str | None) -> list[str]:
    """The feature columns of a frame: all but the target and the inference-log columns."""
    excluded = RESERVED_COLUMNS | ({target_column} if target_column else set())
    return [str(name) for name in frame.columns if name not in excluded]


def build_profile(
    frame: pd.DataFrame, *, target_column: str | None, predictions: np.ndarray | None, task: str
) -> dict[str, Any]:
    """The reference profile of `frame` (the training data), stored with the model version it trained.

    `predictions` are the model's predictions on the rows of `frame` (for the prediction distribution and the
    reference quality), `task` is "classification" or "regression". Columns `prediction`, `_timestamp`,
    `_model_version` and the target column are not features. The result is plain JSON (see module docstring).
    """
    kind = _target_kind(task)
    if target_column is not None and target_column not in frame.columns:
        raise ValueError(f"target column {target_column!r} is not in the reference data")
    if predictions is not None and len(predictions) != len(frame):
        raise ValueError(f"{len(predictions)} predictions for {len(frame)} reference rows")
    names = feature_columns(frame, target_column)
    text = [name for name in names if is_numeric_text(frame[name])]
    parsed = frame.assign(**{name: parse_numbers(frame[name]) for name in text}) if text else frame
    numeric = numeric_distributions(parsed, [name for name in names if is_numeric(parsed[name])])
    for name in text:
        numeric[name]["text"] = True
    features = {name: numeric[name] if name in numeric else categorical_distribution(frame[name]) for name in names}
    labels = frame[target_column] if target_column is not None else None
    predicted = pd.Series(np.asarray(predictions)) if predictions is not None else None
    measured: dict[str, float] = {}
    if labels is not None and predicted is not None:
        known = labels.notna().to_numpy()
        measured = quality(task, predicted.to_numpy()[known], labels.to_numpy()[known])
    return {
        "version": PROFILE_VERSION,
        "task": task,
        "n_rows": len(frame),
        "target_column": target_column,
        "features": features,
        "prediction": distribution(predicted, kind=kind) if predicted is not None else None,
        "label": distribution(labels, kind=kind) if labels is not None else None,
        "quality": measured,
    }
