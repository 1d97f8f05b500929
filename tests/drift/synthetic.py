"""Seeded synthetic data for the drift tests: 20 numeric and 4 categorical features, a class label."""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC = 20
#: Shares of the categories of each categorical feature.
CATEGORICAL = {
    "c0": [0.5, 0.3, 0.2],
    "c1": [0.4, 0.3, 0.15, 0.1, 0.05],
    "c2": [0.25, 0.25, 0.25, 0.25],
    "c3": [0.6, 0.2, 0.1, 0.05, 0.03, 0.02],
}
#: Rows of the reference a model version's profile is built from here (the size of a typical training set).
REFERENCE_ROWS = 10_000
#: Rows of a monitored window in the statistical targets.
WINDOW_ROWS = 5_000


def make_frame(
    rng: np.random.Generator, rows: int, *, shift: float = 0.0, positive_share: float = 0.5, strings: bool = False
) -> pd.DataFrame:
    """x0..x19 ~ N(0, 1) with x0's mean moved by `shift` sd; c0..c3 categorical (pandas categoricals, or string
    columns with `strings`); `label` 0/1 with P(1) = `positive_share`; `prediction` = the label flipped on 10% of
    rows (a decent classifier)."""
    numeric = rng.standard_normal((NUMERIC, rows))
    numeric[0] += shift
    data: dict[str, object] = {f"x{i}": numeric[i] for i in range(NUMERIC)}
    for name, shares in CATEGORICAL.items():
        names = [f"{name}_{k}" for k in range(len(shares))]
        codes = np.searchsorted(np.cumsum(shares[:-1]), rng.random(rows), side="right")
        column = pd.Categorical.from_codes(codes, categories=names)
        data[name] = pd.array(np.asarray(names, dtype=object)[codes], dtype="str") if strings else column
    label = (rng.random(rows) < positive_share).astype(np.int64)
    data["label"] = label
    data["prediction"] = np.where(rng.random(rows) < 0.1, 1 - label, label)
    return pd.DataFrame(data, copy=False)


def reference_profile(frame: pd.DataFrame) -> dict:
    """The profile a model version would carry for `frame` (its predictions included)."""
    from pipelines.drift import build_profile

    return build_profile(
        frame.drop(columns="prediction"),
        target_column="label",
        predictions=frame["prediction"].to_numpy(),
        task="classification",
    )
