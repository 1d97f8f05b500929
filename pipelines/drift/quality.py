"""Data quality of a window against the reference profile: the schema check, and reading each column as the
reference saw it, with every cell that cannot be read counted by column and reason.

Data-quality problems are reported apart from drift and never become drift: a cell that cannot be read as its
reference distribution's kind is left out of that distribution's test (missing *with a reason*, not counted as a
missing value), and a column that is absent is not tested. What is reported (`ColumnProblem.problem`):

- `missing column`: a profiled feature (or the predictions) absent from the window; count = window rows.
- `unexpected column`: a window column that is neither a feature, nor the predictions or labels, nor an
  inference-log column; count = its non-missing cells. Not tested.
- `unparseable`: cells of a numeric distribution that are not numbers (`"n/a"`, an empty string); left out.
- `type changed`: cells read after a lossless conversion to the reference's type: numbers arriving as text (`"3.5"`
  for 3.5, `"1"` for the class 1), integer codes of text categories written as text (`3` for `"3"`), booleans as
  `0`/`1`. They are tested as converted.
- `unexpected type`: categorical cells of another type that no conversion maps to a reference category: integer
  codes of text categories, probabilities (fractions) where the reference has integer classes (in a column of
  fractions, a probability of exactly 0 or 1 is a fraction too); left out.
- `unreadable`: the column could not be read at all (the error is in the detail); not tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.drift.profile import is_numeric, parse_numbers, plain_value

#: Distinct odd values quoted in a problem's detail.
EXAMPLES = 3


@dataclass
class ColumnProblem:
    """One data-quality problem of one column of the window: what, how many cells, and a readable detail."""

    column: str
    problem: str
    count: int
    detail: str


def _examples(values: list[Any]) -> str:
    shown = ", ".join(repr(value) for value in values[:EXAMPLES])
    return f"e.g. {shown}" + (", ..." if len(values) > EXAMPLES else "")


def schema_problems(reference: dict[str, Any], current: pd.DataFrame, *, known: set[Any]) -> list[ColumnProblem]:
    """Profiled features absent from the window, and window columns that are neither features nor in `known`."""
    rows = len(current)
    problems = [
        ColumnProblem(name, "missing column", rows, "profiled feature absent from the window: not tested")
        for name in reference["features"]
        if name not in current.columns
    ]
    expected = set(reference["features"]) | known
    problems += [
        ColumnProblem(str(name), "unexpected column", int(current[name].notna().sum()),
                      "not a feature of the reference profile: not tested")
        for name in current.columns
        if name not in expected
    ]
    return problems


@dataclass
class NumericColumn:
    """A window column read as numbers: float64 values (NaN = missing or left out), cells left out, problems."""

    values: np.ndarray
    excluded: int = 0
    problems: list[ColumnProblem] = field(default_factory=list)


def numeric_column(name: str, series: pd.Series, *, text_in_reference: bool = False) -> NumericColumn:
    """Read a column of a numeric distribution; text is parsed, cells that are not numbers are left out."""
    if is_numeric(series) or pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy()
        if values.dtype != np.float64:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return NumericColumn(values)
    parsed = parse_numbers(series)
    present = series.notna().to_numpy()
    bad = present & np.isnan(parsed)
    read = int(np.count_nonzero(present)) - int(np.count_nonzero(bad))
    problems = []
    if bad.any():
        odd = pd.unique(series[bad]).tolist()
        problems.append(ColumnProblem(name, "unparseable", int(bad.sum()),
                                      f"not numbers ({_examples(odd)}): left out of the test"))
    if read and not text_in_reference:
        problems.append(ColumnProblem(name, "type changed", read, "numbers arrived as text: read as numbers"))
    return NumericColumn(parsed, int(bad.sum()), problems)


def value_kind(value: Any) -> str:
    """The kind of a category value: `bool`, `integer` (integral numbers too), `fraction`, `text` or `other`."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "fraction"
    return "text" if isinstance(value, str) else "other"


def _converted(value: Any, kinds: set[str]) -> Any:
    """`value` as one of `kinds` when a lossless conversion exists (text <-> numbers, booleans <-> 0/1), else None."""
    kind = value_kind(value)
    if kind == "text":
        word = value.strip()
        if "bool" in kinds and word.lower() in ("true", "false"):
            return word.lower() == "true"
        try:
            number = float(word)
        except ValueError:
            return None
        return int(number) if number.is_integer() and "integer" in kinds else number
    if kind == "integer":
        if "text" in kinds:
            return str(int(value))
        return bool(value) if "bool" in kinds and value in (0, 1) else None
    if kind == "bool":
        return str(value) if "text" in kinds else int(value) if "integer" in kinds else None
    return str(value) if kind == "fraction" and "text" in kinds else None


@dataclass
class CategoricalColumn:
    """A window column read as the reference's categories.

    `counts` are over the reference categories, then `other` (values of the reference's kinds that are not among
    its categories: unseen values, which are drift), then `missing`; `excluded` cells were left out.
    """

    counts: np.ndarray
    excluded: int
    problems: list[ColumnProblem]
    codes: np.ndarray
    mapped: list[Any]

    def values(self) -> np.ndarray:
        """The cells as reference values (converted where their type changed); None where missing or left out."""
        table = np.empty(len(self.mapped) + 1, dtype=object)
        table[:-1] = self.mapped
        table[-1] = None
        return table[self.codes]


def categorical_column(name: str, profile: dict[str, Any], series: pd.Series) -> CategoricalColumn:
    """Read a column of a categorical distribution, converting values whose type changed (see the module)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes, uniques = series.cat.codes.to_numpy(), list(series.cat.categories)
    else:
        codes, index = pd.factorize(series, use_na_sentinel=True)
        uniques = list(index)
    per_code = np.bincount(codes + 1, minlength=len(uniques) + 1)
    per_value, missing = per_code[1:], int(per_code[0])
    categories = profile["categories"]
    position = {(value_kind(value), value): index for index, value in enumerate(categories)}
    kinds = {value_kind(value) for value in categories}
    other = len(categories)
    target = np.empty(len(uniques), dtype=np.intp)
    mapped: list[Any] = []
    changed: dict[str, list[Any]] = {}
    odd: dict[str, list[Any]] = {}
    values = [plain_value(raw) for raw in uniques]
    # A column of fractions where the reference has none (probabilities for classes): its whole numbers (a
    # probability of exactly 0 or 1) are fractions too, not classes.
    fractions = "fraction" not in kinds and any(value_kind(value) == "fraction" for value in values)
    for i, value in enumerate(values):
        kind = "fraction" if fractions and isinstance(value, float) else value_kind(value)
        if not kinds or kind in kinds:
            target[i], read = position.get((kind, value), other), value
        else:
            read = _converted(value, kinds)
            key = (value_kind(read), read) if read is not None else None
            if key in position:
                target[i] = position[key]
                changed.setdefault(kind, []).append(i)
            else:
                target[i], read = -1, None
                odd.setdefault(kind, []).append(i)
        mapped.append(read)
    kept = target >= 0
    counts = np.bincount(target[kept], weights=per_value[kept], minlength=other + 2).astype(np.int64)
    counts[other + 1] = missing
    expected = "/".join(sorted(kinds))
    problems = []
    for kind, indices in changed.items():
        problems.append(ColumnProblem(name, "type changed", int(per_value[indices].sum()),
                                      f"{kind} values where the reference has {expected}: read as {expected}"))
    for kind, indices in odd.items():
        hint = " (probabilities instead of classes?)" if kind == "fraction" and kinds == {"integer"} else ""
        examples = _examples([values[i] for i in indices])
        problems.append(ColumnProblem(name, "unexpected type", int(per_value[indices].sum()),
                                      f"{kind} values where the reference has {expected}{hint} ({examples}): "
                                      "left out of the test"))
    excluded = int(per_value[~kept].sum())
    codes = np.where(codes >= 0, codes, len(uniques))
    return CategoricalColumn(counts, excluded, problems, codes, mapped)
