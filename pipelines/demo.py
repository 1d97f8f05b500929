"""A seeded demo dataset, so the demo and the tests need no download.

`demo://classification?rows=5000&seed=7&shift=0.0&prior=0.5` or `demo://regression?rows=5000&seed=11`.

Columns: numeric features `num_0 .. num_{numeric-1}` (default 6; some carry the label, `num_1` is
correlated with `num_0`, the rest are noise) and two categorical ones, `cat_0` (carries the label) and
`cat_1` (noise), then the target column (`label`, 0/1, for classification; `target`, a float, for regression).

Parameters: `rows`, `seed`, `numeric`, `shift` (mean shift of `shift_feature`, default `num_0`, in standard
deviations of the generated column: covariate shift), `prior` (positive-class share, classification only:
prior shift, since features are drawn given the class), `missing` (share of values blanked in `num_2`
and `cat_1`), `target` (the target column's name). The same URI always gives the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd

SCHEME = "demo"
KINDS = ("classification", "regression")
_LOC = (50.0, 10.0, 0.0, 100.0, 5.0, -3.0)
_SCALE = (10.0, 2.0, 1.0, 25.0, 1.5, 0.5)
#: Class effect on each numeric feature, in within-class standard deviations (classification).
_CLASS_EFFECT = (0.7, 0.45, 0.4, 0.0, 0.3, 0.0)
_CAT0 = ("a", "b", "c")
_CAT1 = ("north", "south", "east", "west")


@dataclass(frozen=True)
class DemoSpec:
    """What a demo:// URI asks for."""

    kind: str
    rows: int = 5000
    seed: int = 0
    numeric: int = 6
    shift: float = 0.0
    shift_feature: str = "num_0"
    prior: float = 0.5
    missing: float = 0.0
    target: str = ""

    @property
    def target_column(self) -> str:
        """The target column's name."""
        return self.target or ("label" if self.kind == "classification" else "target")

    @property
    def numeric_columns(self) -> list[str]:
        """The numeric feature names."""
        return [f"num_{i}" for i in range(self.numeric)]

    @property
    def feature_columns(self) -> list[str]:
        """Every feature name, in column order."""
        return [*self.numeric_columns, "cat_0", "cat_1"]


_PARAMS: dict[str, type] = {"rows": int, "seed": int, "numeric": int, "shift": float, "shift_feature": str,
                            "prior": float, "missing": float, "target": str}


def is_demo(uri: str) -> bool:
    """Whether `uri` names the demo generator."""
    return uri.startswith(f"{SCHEME}://")


def parse_demo_uri(uri: str) -> DemoSpec:
    """The DemoSpec of a demo:// URI; ValueError naming the bad part."""
    parts = urlsplit(uri)
    if parts.scheme != SCHEME or parts.netloc not in KINDS:
        raise ValueError(f"{uri!r}: expected demo://classification or demo://regression")
    values: dict[str, Any] = {}
    for key, text in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _PARAMS:
            raise ValueError(f"{uri!r}: unknown parameter {key!r}; known: {', '.join(sorted(_PARAMS))}")
        try:
            values[key] = _PARAMS[key](text)
        except ValueError:
            raise ValueError(f"{uri!r}: {key}={text!r} is not a {_PARAMS[key].__name__}") from None
    spec = DemoSpec(kind=parts.netloc, **values)
    _check(uri, spec)
    return spec


def _check(uri: str, spec: DemoSpec) -> None:
    if not 1 <= spec.rows <= 50_000_000:
        raise ValueError(f"{uri!r}: rows must be in [1, 50000000]")
    if not 3 <= spec.numeric <= 500:
        raise ValueError(f"{uri!r}: numeric must be in [3, 500]")
    if not 0.0 < spec.prior < 1.0:
        raise ValueError(f"{uri!r}: prior must be in (0, 1)")
    if spec.prior != 0.5 and spec.kind != "classification":
        raise ValueError(f"{uri!r}: prior applies to classification only")
    if not 0.0 <= spec.missing < 1.0:
        raise ValueError(f"{uri!r}: missing must be in [0, 1)")
    if spec.shift_feature not in spec.numeric_columns:
        raise ValueError(f"{uri!r}: shift_feature must be one of the numeric features num_0..num_{spec.numeric - 1}")


def _cycle(values: tuple[float, ...], i: int) -> float:
    return values[i % len(values)]


def generate(spec: DemoSpec) -> pd.DataFrame:
    """The frame a DemoSpec describes (deterministic for a given spec)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.rows
    latent = rng.standard_normal((n, spec.numeric))
    latent[:, 1] = 0.6 * latent[:, 0] + 0.8 * latent[:, 1]  # num_1 correlated with num_0
    data: dict[str, Any] = {}
    if spec.kind == "classification":
        label = (rng.random(n) < spec.prior).astype(np.int64)
        sign = np.where(label == 1, 0.5, -0.5)
        for i, effect in enumerate(_CLASS_EFFECT[: spec.numeric]):
            latent[:, i] += 2 * effect * sign
        cat0 = np.where(label == 1, rng.choice(3, n, p=[0.5, 0.3, 0.2]), rng.choice(3, n, p=[0.2, 0.3, 0.5]))
    else:
        cat0 = rng.choice(3, n)
    cat1 = rng.choice(len(_CAT1), n)
    for i, name in enumerate(spec.numeric_columns):
        data[name] = _cycle(_LOC, i) + _cycle(_SCALE, i) * latent[:, i]
    column = data[spec.shift_feature]
    column += spec.shift * column.std()
    data["cat_0"] = np.asarray(_CAT0, dtype=object)[cat0]
    data["cat_1"] = np.asarray(_CAT1, dtype=object)[cat1]
    if spec.missing > 0:
        for name in ("num_2", "cat_1"):
            data[name] = np.where(rng.random(n) < spec.missing, None, data[name])
    if spec.kind == "classification":
        data[spec.target_column] = label
    else:
        data[spec.target_column] = _regression_target(data, spec, rng)
    return pd.DataFrame(data).astype({"num_2": "float64", "cat_0": "str", "cat_1": "str"})


def _regression_target(data: dict[str, Any], spec: DemoSpec, rng: np.random.Generator) -> np.ndarray:
    """Target from the (possibly shifted) features: P(target | features) never changes with the shift."""
    z = [(np.nan_to_num(np.asarray(data[f"num_{i}"], dtype=float), nan=_cycle(_LOC, i)) - _cycle(_LOC, i))
         / _cycle(_SCALE, i) for i in range(5)]
    cat_effect = pd.Series(data["cat_0"]).map({"a": 10.0, "b": 0.0, "c": -10.0}).to_numpy()
    noise = rng.normal(0.0, 12.0, len(z[0]))
    return 100.0 + 20.0 * z[0] + 10.0 * z[1] - 8.0 * z[2] + 5.0 * z[4] ** 2 + cat_effect + noise


def demo_frame(uri: str) -> pd.DataFrame:
    """The frame of a demo:// URI."""
    return generate(parse_demo_uri(uri))


def demo_traffic(dataset_uri: str, *, rows: int = 2000, shift: float = 0.0, prior: float | None = None,
                 seed: int | None = None, shift_feature: str | None = None,
                 include_target: bool = False) -> pd.DataFrame:
    """Serving traffic shaped like a model's demo dataset, optionally shifted.

    `dataset_uri` is the model's demo:// training URI (its schema is kept); `shift` moves the mean of
    `shift_feature` (default: the URI's, else `num_0`) by that many standard deviations; `prior` sets the
    positive-class share (classification). `seed` defaults to the dataset's seed + 1000, so traffic is never
    the training rows themselves. The target column is dropped unless `include_target`.
    """
    base = parse_demo_uri(dataset_uri)
    spec = replace(base, rows=rows, shift=shift, seed=base.seed + 1000 if seed is None else seed,
                   shift_feature=shift_feature or base.shift_feature,
                   prior=base.prior if prior is None else prior)
    _check(dataset_uri, spec)
    frame = generate(spec)
    return frame if include_target else frame.drop(columns=[spec.target_column])
