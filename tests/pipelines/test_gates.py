"""Gates as pure decisions: thresholds, champion comparison (direction-aware), model checks, quality."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipelines import gates as g


def test_classification_metrics() -> None:
    y = np.array(["no", "yes", "yes", "no", "yes"])
    pred = np.array(["no", "yes", "no", "no", "yes"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])
    m = g.compute_metrics("classification", y, pred, proba, ["no", "yes"])
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["roc_auc"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx(0.8)
    assert m["log_loss"] > 0
    assert set(g.compute_metrics("classification", y, pred)) == {"accuracy", "f1"}  # no proba: label metrics


def test_regression_metrics() -> None:
    m = g.compute_metrics("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert m["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["r2"] == pytest.approx(-1.0)


def test_threshold_gate_checks_minimum_and_maximum() -> None:
    result = g.threshold_gate({"r2": 0.7, "rmse": 60.0}, {"r2": 0.6}, {"rmse": 50.0})
    assert not result.passed
    assert [(c.name, c.passed) for c in result.checks] == [("r2 >= 0.6", True), ("rmse <= 50.0", False)]
    assert result.checks[1].value == 60.0 and result.checks[1].threshold == 50.0
    missing = g.threshold_gate({"roc_auc": float("nan")}, {"roc_auc": 0.5, "accuracy": 0.5}, {})
    assert not any(c.passed for c in missing.checks)


@pytest.mark.parametrize(("metric", "ours", "theirs", "margin", "passed"), [
    ("roc_auc", 0.85, 0.86, 0.01, True),   # within the margin
    ("roc_auc", 0.84, 0.86, 0.01, False),  # worse than the margin allows
    ("log_loss", 0.40, 0.41, 0.0, True),   # lower is better
    ("log_loss", 0.43, 0.41, 0.01, False),
    ("rmse", 10.5, 10.0, 1.0, True),
    ("rmse", 12.0, 10.0, 1.0, False),
    ("r2", 0.7, 0.8, 0.05, False),
])
def test_champion_gate_is_direction_aware(metric: str, ours: float, theirs: float, margin: float,
                                          passed: bool) -> None:
    result = g.champion_gate(metric, {metric: ours}, {metric: theirs}, margin, "3")
    assert result.passed is passed
    assert result.checks[0].value == ours


def test_champion_gate_without_or_with_a_broken_champion() -> None:
    assert g.champion_gate("roc_auc", {"roc_auc": 0.5}, None, 0.0).passed
    broken = g.champion_gate("roc_auc", {"roc_auc": 0.9}, None, 0.0, "2", error="KeyError: 'x'")
    assert not broken.passed and "could not be evaluated" in broken.checks[0].detail


def test_quality_gate_floors_are_direction_aware() -> None:
    result = g.quality_gate({"rmse": 12.0, "r2": 0.9}, {"rmse": 10.0, "r2": 0.5})
    assert [(c.name, c.passed) for c in result.checks] == [("r2 >= 0.5", True), ("rmse <= 10.0", False)]
    assert g.quality_gate({"accuracy": 0.9}, {"roc_auc": 0.8}).passed  # not measurable: no alarm


def test_edge_rows_cover_missing_unseen_and_extremes() -> None:
    profile = {"columns": {"x": {"kind": "numeric", "min": 0.0, "max": 10.0, "mean": 5.0},
                           "c": {"kind": "categorical", "categories": ["a", "b"]}}}
    rows = g.edge_rows(profile, ["x"], ["c"])
    assert len(rows) == 4
    assert math.isnan(rows.loc[0, "x"]) and pd.isna(rows.loc[0, "c"])
    assert rows.loc[1, "c"] == "__unseen_category__"
    assert rows.loc[2, "x"] == 1010.0 and rows.loc[3, "x"] == -1000.0
    assert rows["x"].dtype == np.float64


def test_model_checks() -> None:
    assert g.signature_check(["a", "b"], ["a", "b"]).passed
    assert not g.signature_check(["a"], ["a", "b"]).passed
    assert not g.signature_check(None, ["a"]).passed
    assert g.round_trip_check(np.array([1, 0]), np.array([1, 0]), "classification").passed
    assert not g.round_trip_check(np.array([1.0, 2.0]), np.array([1.0, 2.5]), "regression").passed
    assert not g.round_trip_check(np.array([1]), None, "regression", error="boom").passed
    assert g.edge_check(np.array([0, 1, 1, 0]), 4, "classification", [0, 1]).passed
    assert not g.edge_check(np.array([0, 2, 1, 0]), 4, "classification", [0, 1]).passed
    assert not g.edge_check(np.array([1.0, np.inf, 0.0, 2.0]), 4, "regression").passed
    assert not g.edge_check(np.array([1.0, 2.0]), 4, "regression").passed
    assert not g.finite_proba_check(np.array([[0.5, np.nan]])).passed
    assert g.latency_check(3.0, 50.0).passed and not g.latency_check(80.0, 50.0).passed


def test_measure_latency_times_the_callable() -> None:
    calls = []
    p50 = g.measure_latency(lambda row: calls.append(len(row)), pd.DataFrame({"x": [1]}), repeats=5, warmup=2)
    assert len(calls) == 7 and p50 >= 0.0


def test_decision_round_trip_and_summary() -> None:
    decision = g.Decision([g.threshold_gate({"r2": 0.1}, {"r2": 0.5}, {}),
                           g.champion_gate("r2", {"r2": 0.1}, None, 0.0)], champion_version=None)
    assert not decision.passed
    again = g.Decision.from_dict(decision.to_dict())
    assert again.to_dict() == decision.to_dict()
    assert decision.summary()[0] == "gate thresholds: FAIL"


def test_multiclass_metrics() -> None:
    y = np.array(["a", "b", "c", "a", "b", "c"])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1],
                      [0.5, 0.1, 0.4]])
    pred = np.array(["a", "b", "c", "a", "b", "a"])
    m = g.compute_metrics("classification", y, pred, proba, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert 0.0 < m["f1"] < 1.0 and m["roc_auc"] > 0.9 and m["log_loss"] > 0
