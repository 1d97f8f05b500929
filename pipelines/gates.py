"""Metrics and gates: the decisions that stand between a trained model and the `champion` alias.

- Gate 1, `thresholds`: absolute minimum / maximum per metric, from the spec.
- Gate 2, `champion`: the challenger is not worse than the current champion on the same evaluation data,
  by `challenger_margin` on the primary metric (direction-aware).
- `model_validation`: signature present, input example round trip through the logged model, finite
  predictions of the right shape on edge rows (missing values, unseen categories, extreme values),
  single-row p50 latency under the limit.

Each gate returns a `GateResult` listing every check with pass/fail and its numbers; `Decision` is the
conjunction. Everything here is pure except `measure_latency`, which times a callable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.catalog import higher_is_better, is_worse


@dataclass(frozen=True)
class GateCheck:
    """One check: its name, the outcome, the measured value, the threshold and a sentence."""

    name: str
    passed: bool
    value: float | None = None
    threshold: float | None = None
    detail: str = ""


@dataclass
class GateResult:
    """A gate and its checks; it passes when every check does."""

    gate: str
    checks: list[GateCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"gate": self.gate, "passed": self.passed, "checks": [asdict(c) for c in self.checks]}


@dataclass
class Decision:
    """All gates for one challenger."""

    gates: list[GateResult]
    champion_version: str | None = None

    @property
    def passed(self) -> bool:
        """Whether every gate passed."""
        return all(g.passed for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"passed": self.passed, "champion_version": self.champion_version,
                "gates": [g.to_dict() for g in self.gates]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """The inverse of `to_dict`."""
        gates = [GateResult(g["gate"], [GateCheck(**c) for c in g["checks"]]) for g in data["gates"]]
        return cls(gates=gates, champion_version=data.get("champion_version"))

    def summary(self) -> list[str]:
        """One line per gate, and one per failed check."""
        lines = []
        for gate in self.gates:
            lines.append(f"gate {gate.gate}: {'pass' if gate.passed else 'FAIL'}")
            lines += [f"  - {c.name}: {c.detail}" for c in gate.checks if not c.passed]
        return lines


# ------------------------------------------------------------------------------------------------- metrics

def compute_metrics(task: str, y_true: Sequence[Any], y_pred: Sequence[Any], proba: np.ndarray | None = None,
                    classes: Sequence[Any] | None = None) -> dict[str, float]:
    """Every metric of `task` that the inputs allow (probability metrics need `proba` and `classes`)."""
    from sklearn import metrics as m

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if task == "regression":
        return {"rmse": float(math.sqrt(m.mean_squared_error(y_true, y_pred))),
                "mae": float(m.mean_absolute_error(y_true, y_pred)),
                "r2": float(m.r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan")}
    labels = list(classes) if classes is not None else sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    binary = len(labels) == 2
    f1 = (m.f1_score(y_true, y_pred, labels=labels, pos_label=labels[-1], average="binary", zero_division=0)
          if binary else m.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    out = {"accuracy": float(m.accuracy_score(y_true, y_pred)), "f1": float(f1)}
    if proba is not None:
        present = len(set(y_true.tolist())) > 1
        if binary:
            out["roc_auc"] = float(m.roc_auc_score(y_true == labels[1], proba[:, 1])) if present else float("nan")
        else:
            out["roc_auc"] = float(m.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)) \
                if present else float("nan")
        out["log_loss"] = float(m.log_loss(y_true, proba, labels=labels))
    return out


# --------------------------------------------------------------------------------------------------- gates

def threshold_gate(metrics: dict[str, float], minimum: dict[str, float], maximum: dict[str, float]) -> GateResult:
    """Gate 1: every bounded metric within its bound (a missing or NaN metric fails)."""
    checks = []
    for bounds, is_min in ((minimum, True), (maximum, False)):
        for metric, bound in sorted(bounds.items()):
            value = metrics.get(metric)
            ok = value is not None and not math.isnan(value) and (value >= bound if is_min else value <= bound)
            shown = "n/a" if value is None else f"{value:.4f}"
            checks.append(GateCheck(f"{metric} {'>=' if is_min else '<='} {bound}", ok, value, bound,
                                    f"{metric} = {shown}, {'minimum' if is_min else 'maximum'} {bound}"))
    return GateResult("thresholds", checks)


def champion_gate(primary: str, challenger: dict[str, float], champion: dict[str, float] | None,
                  margin: float, champion_version: str | None = None, error: str | None = None) -> GateResult:
    """Gate 2: the challenger's primary metric is no worse than the champion's, by at most `margin`.

    `champion` None (and no `error`) means there is no champion yet: the gate passes. `error` (the champion
    could not be scored on this data) fails it: a human has to look.
    """
    name = f"{primary} vs champion"
    if error is not None:
        return GateResult("champion", [GateCheck(name, False, challenger.get(primary), None,
                                                 f"champion v{champion_version} could not be evaluated: {error}")])
    if champion is None:
        return GateResult("champion", [GateCheck(name, True, challenger.get(primary), None,
                                                 "no champion yet: first model")])
    higher = higher_is_better(primary)
    ours, theirs = challenger.get(primary, float("nan")), champion.get(primary, float("nan"))
    bound = theirs - margin if higher else theirs + margin
    ok = not (math.isnan(ours) or math.isnan(theirs)) and not is_worse(primary, ours, bound)
    return GateResult("champion", [GateCheck(
        name, ok, ours, bound,
        f"challenger {primary} {ours:.4f} vs champion v{champion_version} {theirs:.4f} "
        f"(margin {margin}, {'higher' if higher else 'lower'} is better)")])


def quality_gate(metrics: dict[str, float], floors: dict[str, float]) -> GateResult:
    """Monitoring quality: each metric on its better side of the floor (direction-aware, e.g. rmse <= floor)."""
    checks = []
    for metric, bound in sorted(floors.items()):
        value = metrics.get(metric)
        higher = higher_is_better(metric)
        ok = value is None or math.isnan(value) or not is_worse(metric, value, bound)
        shown = "not measurable" if value is None or math.isnan(value) else f"{value:.4f}"
        checks.append(GateCheck(f"{metric} {'>=' if higher else '<='} {bound}", ok, value, bound,
                                f"{metric} = {shown} on labelled traffic"))
    return GateResult("quality", checks)


# --------------------------------------------------------------------------------------- model validation

def signature_check(signature_inputs: list[str] | None, features: list[str]) -> GateCheck:
    """The logged model has an input signature naming every feature."""
    if signature_inputs is None:
        return GateCheck("signature", False, detail="the logged model has no input signature")
    missing = sorted(set(features) - set(signature_inputs))
    return GateCheck("signature", not missing, float(len(signature_inputs)), float(len(features)),
                     f"signature lacks {missing}" if missing else f"signature names all {len(features)} features")


def same_predictions(expected: np.ndarray, actual: np.ndarray, task: str) -> bool:
    """Equal labels (classification) or equal values up to float noise (regression)."""
    expected, actual = np.asarray(expected).ravel(), np.asarray(actual).ravel()
    if expected.shape != actual.shape:
        return False
    if task == "regression":
        return bool(np.allclose(expected.astype(float), actual.astype(float), rtol=1e-6, atol=1e-9))
    return bool((expected.astype(str) == actual.astype(str)).all())


def round_trip_check(expected: np.ndarray, actual: np.ndarray | None, task: str, error: str | None = None) -> GateCheck:
    """The input example, sent through the logged model, gives what the trained pipeline gives."""
    if error is not None or actual is None:
        return GateCheck("input example round trip", False, detail=f"the logged model failed: {error}")
    ok = same_predictions(expected, actual, task)
    return GateCheck("input example round trip", ok, float(len(np.asarray(actual).ravel())), float(len(expected)),
                     "logged model reproduces the pipeline's predictions" if ok
                     else "logged model's predictions differ from the pipeline's")


def edge_rows(profile: dict[str, Any], numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Rows a served model must survive: all missing, unseen categories, extreme highs and lows."""
    columns = profile["columns"]

    def number(name: str, which: str) -> float:
        ref = columns.get(name, {})
        low, high = ref.get("min"), ref.get("max")
        if low is None or high is None:
            return {"mean": 0.0, "high": 1e6, "low": -1e6}[which]
        span = (high - low) or 1.0
        return {"mean": ref.get("mean") or (low + high) / 2, "high": high + 100 * span, "low": low - 100 * span}[which]

    def category(name: str) -> str | None:
        known = columns.get(name, {}).get("categories")
        return known[0] if known else None

    rows: list[dict[str, Any]] = [
        {**{n: np.nan for n in numeric}, **{c: None for c in categorical}},
        {**{n: number(n, "mean") for n in numeric}, **{c: "__unseen_category__" for c in categorical}},
        {**{n: number(n, "high") for n in numeric}, **{c: category(c) for c in categorical}},
        {**{n: number(n, "low") for n in numeric}, **{c: category(c) for c in categorical}},
    ]
    frame = pd.DataFrame(rows, columns=[*numeric, *categorical])
    return frame.astype({n: np.float64 for n in numeric} | {c: object for c in categorical})


def edge_check(predictions: np.ndarray | None, rows: int, task: str, classes: Sequence[Any] | None = None,
               error: str | None = None) -> GateCheck:
    """Edge-row predictions exist, one per row, finite (regression) or known classes (classification)."""
    if error is not None or predictions is None:
        return GateCheck("edge rows", False, detail=f"prediction failed on edge rows: {error}")
    values = np.asarray(predictions)
    if len(values) != rows or (values.ndim > 1 and values.shape[1] != 1):
        return GateCheck("edge rows", False, float(len(values)), float(rows),
                         f"expected {rows} predictions, got shape {values.shape}")
    values = values.ravel()
    if task == "regression":
        ok = bool(np.isfinite(values.astype(float)).all())
        detail = "finite predictions on all edge rows" if ok else f"non-finite predictions: {values.tolist()}"
    else:
        known = {str(c) for c in classes} if classes is not None else None
        ok = known is None or {str(v) for v in values} <= known
        detail = "known classes on all edge rows" if ok else f"unknown classes: {values.tolist()}"
    return GateCheck("edge rows", ok, float(rows), float(rows), detail)


def finite_proba_check(proba: np.ndarray | None) -> GateCheck:
    """Class probabilities on edge rows are finite and sum to one."""
    if proba is None:
        return GateCheck("edge rows probabilities", True, detail="no probabilities (regressor)")
    ok = bool(np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0, atol=1e-6))
    return GateCheck("edge rows probabilities", ok, detail="finite, normalised" if ok else f"bad: {proba.tolist()}")


def measure_latency(predict: Callable[[pd.DataFrame], Any], row: pd.DataFrame, repeats: int = 15,
                    warmup: int = 2) -> float:
    """Median wall time, in milliseconds, of `predict(row)` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        predict(row)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(row)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def latency_check(p50_ms: float, limit_ms: float) -> GateCheck:
    """Single-row p50 latency under the limit."""
    return GateCheck("single-row latency p50", p50_ms <= limit_ms, p50_ms, limit_ms,
                     f"p50 {p50_ms:.2f} ms, limit {limit_ms} ms")


def model_validation_gate(checks: list[GateCheck]) -> GateResult:
    """The model-validation gate from its measured checks."""
    return GateResult("model_validation", checks)
