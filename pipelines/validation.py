"""Data validation: learn a reference profile from training data, check new data against it.

A profile records, per column, its kind (numeric / categorical / boolean / datetime), dtype, missing rate,
numeric range and categories, plus the row count. `validate` checks a frame against the target column,
the minimum row count and, when a reference profile exists (the champion's), schema, missing values,
ranges (with tolerance) and unseen categories. The report names every failing column and why; failing data
raises `DataValidationError` in the pipeline. Pure: frames in, JSON-serializable dicts out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: More distinct values than this and a categorical column's categories are not recorded.
MAX_CATEGORIES = 1000


@dataclass(frozen=True)
class Expectations:
    """How strict validation is."""

    min_rows: int = 100
    #: Numeric values may exceed the reference range by this share of its span.
    range_tolerance: float = 0.25
    #: Share of values allowed outside the tolerated range.
    max_out_of_range: float = 0.001
    #: How much the missing rate may grow over the reference's (absolute).
    max_missing_increase: float = 0.05
    #: Share of rows allowed to carry a category the reference never saw.
    max_unseen_share: float = 0.01


@dataclass(frozen=True)
class Check:
    """One validation check: where, what, whether it passed, why, and the numbers behind it."""

    column: str
    check: str
    passed: bool
    reason: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"


@dataclass
class ValidationReport:
    """Every check made on a frame."""

    rows: int
    checks: list[Check]
    reference_rows: int | None = None

    @property
    def passed(self) -> bool:
        """Whether every error-level check passed."""
        return all(c.passed for c in self.checks if c.severity == "error")

    @property
    def failures(self) -> list[Check]:
        """The failed error-level checks."""
        return [c for c in self.checks if not c.passed and c.severity == "error"]

    @property
    def failing_columns(self) -> dict[str, list[str]]:
        """Column -> the reasons it failed."""
        out: dict[str, list[str]] = {}
        for check in self.failures:
            out.setdefault(check.column, []).append(check.reason)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON types."""
        return {
            "passed": self.passed,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "failing_columns": self.failing_columns,
            "failures": [asdict(c) for c in self.failures],
            "warnings": [asdict(c) for c in self.checks if not c.passed and c.severity == "warning"],
            "checks": [asdict(c) for c in self.checks],
        }

    def summary(self) -> str:
        """One line per failing column, or 'passed'."""
        if self.passed:
            return f"data valid: {self.rows} rows, {len(self.checks)} checks passed"
        lines = [f"data invalid: {len(self.failing_columns)} column(s) failed"]
        lines += [f"  {column}: {'; '.join(reasons)}" for column, reasons in self.failing_columns.items()]
        return "\n".join(lines)


class DataValidationError(Exception):
    """The data failed validation; `report` says which columns and why."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(report.summary())


def column_kind(series: pd.Series) -> str:
    """numeric, boolean, datetime or categorical."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "categorical"


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def learn_profile(frame: pd.DataFrame, target_column: str | None = None) -> dict[str, Any]:
    """The reference profile of a frame (JSON-serializable)."""
    columns: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        kind = column_kind(series)
        entry: dict[str, Any] = {"kind": kind, "dtype": str(series.dtype), "missing_rate": float(series.isna().mean())}
        present = series.dropna()
        if kind == "numeric" and len(present):
            values = present.to_numpy(dtype=np.float64)
            entry.update(min=_finite(values.min()), max=_finite(values.max()), mean=_finite(values.mean()),
                         std=_finite(values.std()))
        elif kind in ("categorical", "boolean"):
            unique = present.astype(str).unique()
            entry["categories"] = sorted(unique.tolist()) if len(unique) <= MAX_CATEGORIES else None
        columns[str(name)] = entry
    return {"rows": len(frame), "target_column": target_column, "columns": columns}


def _target_checks(frame: pd.DataFrame, target: str, task: str) -> list[Check]:
    if target not in frame.columns:
        return [Check(target, "present", False, "target column is missing")]
    series = frame[target]
    checks = [Check(target, "missing", not series.isna().any(),
                    f"target has {int(series.isna().sum())} missing value(s)",
                    {"missing": int(series.isna().sum())})]
    if task == "classification":
        classes = int(series.nunique(dropna=True))
        checks.append(Check(target, "classes", classes >= 2, f"classification needs >= 2 classes, found {classes}",
                            {"classes": classes}))
    else:
        kind = column_kind(series)
        checks.append(Check(target, "dtype", kind == "numeric", f"regression needs a numeric target, got {kind} "
                                                                f"({series.dtype})", {"kind": kind}))
    return checks


def _numeric_checks(name: str, series: pd.Series, ref: dict[str, Any], exp: Expectations) -> list[Check]:
    low, high = ref.get("min"), ref.get("max")
    present = series.dropna().to_numpy(dtype=np.float64)
    if low is None or high is None or not len(present):
        return []
    span = high - low or max(abs(high), 1.0)  # a constant column still tolerates some spread
    lo, hi = low - exp.range_tolerance * span, high + exp.range_tolerance * span
    outside = int(((present < lo) | (present > hi) | ~np.isfinite(present)).sum())
    share = outside / len(present)
    return [Check(name, "range", share <= exp.max_out_of_range,
                  f"{outside} value(s) ({share:.1%}) outside the tolerated range [{lo:.6g}, {hi:.6g}] "
                  f"(observed [{present.min():.6g}, {present.max():.6g}])",
                  {"outside": outside, "share": share, "allowed_min": lo, "allowed_max": hi,
                   "observed_min": _finite(present.min()), "observed_max": _finite(present.max())})]


def _category_checks(name: str, series: pd.Series, ref: dict[str, Any], exp: Expectations) -> list[Check]:
    known = ref.get("categories")
    present = series.dropna().astype(str)
    if known is None or not len(present):
        return []
    unseen_mask = ~present.isin(set(known))
    share = float(unseen_mask.mean())
    unseen = sorted(present[unseen_mask].unique().tolist())
    return [Check(name, "categories", share <= exp.max_unseen_share,
                  f"{share:.1%} of rows carry unseen categories {unseen[:10]}",
                  {"unseen": unseen[:50], "share": share})]


def _column_checks(name: str, series: pd.Series, ref: dict[str, Any], exp: Expectations) -> list[Check]:
    kind = column_kind(series)
    if kind != ref["kind"]:
        return [Check(name, "dtype", False, f"expected {ref['kind']} ({ref['dtype']}), got {kind} ({series.dtype})",
                      {"expected": ref["kind"], "actual": kind, "dtype": str(series.dtype)})]
    missing = float(series.isna().mean())
    allowed = ref["missing_rate"] + exp.max_missing_increase
    checks = [Check(name, "missing", missing <= allowed,
                    f"missing rate {missing:.1%} over the allowed {allowed:.1%} (reference {ref['missing_rate']:.1%})",
                    {"missing_rate": missing, "allowed": allowed})]
    if kind == "numeric":
        checks += _numeric_checks(name, series, ref, exp)
    elif kind in ("categorical", "boolean"):
        checks += _category_checks(name, series, ref, exp)
    return checks


def validate(frame: pd.DataFrame, *, target_column: str, task: str, profile: dict[str, Any] | None = None,
             expectations: Expectations | None = None) -> ValidationReport:
    """Check `frame` (training data: features and target) against expectations and an optional reference."""
    exp = expectations or Expectations()
    checks = [Check("(table)", "rows", len(frame) >= exp.min_rows,
                    f"{len(frame)} rows, fewer than the minimum {exp.min_rows}", {"rows": len(frame)})]
    checks += _target_checks(frame, target_column, task)
    features = [c for c in frame.columns if c != target_column]
    checks.append(Check("(table)", "features", bool(features), "no feature columns besides the target"))
    for name in features:
        if frame[name].isna().all():
            checks.append(Check(str(name), "missing", False, "every value is missing"))
    if profile is not None:
        for name, ref in profile["columns"].items():
            if name == target_column:
                continue
            if name not in frame.columns:
                checks.append(Check(name, "present", False, f"column is missing (expected {ref['kind']})"))
                continue
            checks += _column_checks(name, frame[name], ref, exp)
        for name in features:
            if name not in profile["columns"]:
                checks.append(Check(str(name), "present", False, "column not in the reference (ignored)",
                                    severity="warning"))
    return ValidationReport(rows=len(frame), checks=checks,
                            reference_rows=None if profile is None else profile.get("rows"))
