"""Reference profiles and `compare`: layout, edge cases, the decision rule, the report's outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from pipelines.contract import MonitoringSettings
from pipelines.drift import build_profile, compare, numeric, stats
from pipelines.drift.profile import MAX_CATEGORIES

from .synthetic import make_frame, reference_profile


@pytest.fixture(scope="module")
def profile() -> dict:
    return reference_profile(make_frame(np.random.default_rng(11), 10_000))


def _window(seed: int = 12, rows: int = 5_000, **kwargs) -> pd.DataFrame:
    return make_frame(np.random.default_rng(seed), rows, **kwargs)


def _feature(report, name):
    return next(item for item in report.features if item.name == name)


def test_profile_is_json_with_features_but_not_target_or_log_columns():
    frame = _window(rows=2_000)
    frame["_timestamp"] = pd.Timestamp("2026-01-01")
    frame["_model_version"] = "3"
    profile = build_profile(
        frame, target_column="label", predictions=frame["prediction"].to_numpy(), task="classification"
    )
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile
    assert set(profile["features"]) == {f"x{i}" for i in range(20)} | {"c0", "c1", "c2", "c3"}
    assert profile["n_rows"] == 2_000 and profile["task"] == "classification"
    assert profile["prediction"]["kind"] == profile["label"]["kind"] == "categorical"
    assert profile["quality"]["accuracy"] == pytest.approx(0.9, abs=0.03)


def test_numeric_profile_grid_holds_the_decile_edges_and_counts_every_value():
    values = np.concatenate([np.random.default_rng(0).exponential(size=9_000), np.full(500, np.nan), np.zeros(500)])
    frame = pd.DataFrame({"x": values})
    numeric_profile = build_profile(frame, target_column=None, predictions=None, task="regression")["features"]["x"]
    assert numeric_profile["missing"] == 500
    assert sum(numeric_profile["counts"]) == 9_500
    assert set(numeric_profile["psi_edges"]) <= set(numeric_profile["grid"])
    assert numeric_profile["grid"] == sorted(set(numeric_profile["grid"]))
    assert numeric_profile["min"] == 0.0 and numeric_profile["mean"] == pytest.approx(np.nanmean(values))


def test_categorical_profile_keeps_the_most_frequent_categories_then_other_and_missing():
    values = [f"v{i}" for i in range(MAX_CATEGORIES + 10) for _ in range(MAX_CATEGORIES + 70 - i)] + [None] * 7
    profile = build_profile(pd.DataFrame({"c": values}), target_column=None, predictions=None, task="classification")
    categorical = profile["features"]["c"]
    assert categorical["categories"] == [f"v{i}" for i in range(MAX_CATEGORIES)]
    assert categorical["counts"][-1] == 7
    assert categorical["counts"][-2] == sum(MAX_CATEGORIES + 70 - i for i in range(MAX_CATEGORIES, MAX_CATEGORIES + 10))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_column": "nope", "predictions": None, "task": "classification"}, "target column 'nope'"),
        ({"target_column": None, "predictions": np.zeros(3), "task": "classification"}, "3 predictions"),
        ({"target_column": None, "predictions": None, "task": "ranking"}, "task must be"),
    ],
)
def test_profile_rejects_inconsistent_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_profile(_window(rows=10), **kwargs)


def _problems(report) -> dict[tuple[str, str], int]:
    return {(p.column, p.problem): p.count for p in report.data_quality}


def test_window_without_a_profiled_feature_reports_it_as_data_quality_and_tests_the_rest(profile):
    report = compare(profile, _window().drop(columns=["x3"]).assign(extra=1.0))
    assert _problems(report) == {("x3", "missing column"): 5_000, ("extra", "unexpected column"): 5_000}
    assert "x3" not in {item.name for item in report.features} and len(report.features) == 23
    assert not report.drifted and report.data_quality_columns == ["x3", "extra"]


def test_window_with_text_in_a_numeric_feature_is_data_quality_not_drift(profile):
    window = _window()
    window["x5"] = "n/a"
    window["x6"] = window["x6"].map(repr)  # numbers as text: read as numbers
    window["x6"] = window["x6"].astype(object)
    window.loc[:9, "x6"] = ""
    report = compare(profile, window)
    problems = _problems(report)
    assert problems[("x5", "unparseable")] == 5_000 and problems[("x6", "unparseable")] == 10
    assert problems[("x6", "type changed")] == 4_990
    assert not report.drifted, report.drifted_features
    x6 = _feature(report, "x6")
    assert x6.n_current == 4_990 and x6.excluded == 10 and x6.current_shares[-1] == 0.0  # left out, not missing


def test_profile_of_another_layout_is_refused(profile):
    with pytest.raises(ValueError, match="version"):
        compare({**profile, "version": 99}, _window())


def test_missing_values_and_unseen_categories_are_drift(profile):
    window = _window()
    window.loc[: len(window) // 3, "x4"] = np.nan
    window["c2"] = window["c2"].astype(str)
    window.loc[: len(window) // 4, "c2"] = "never seen"
    report = compare(profile, window)
    x4, c2 = _feature(report, "x4"), _feature(report, "c2")
    assert x4.drifted and x4.severity == "major"
    assert x4.bins[-1] == "missing" and x4.current_shares[-1] == pytest.approx(1 / 3, abs=0.01)
    assert c2.drifted and c2.bins[-2] == "other" and c2.current_shares[-2] == pytest.approx(0.25, abs=0.01)
    assert set(report.drifted_features) == {"x4", "c2"}


def test_drifted_features_are_graded_by_their_effect_against_the_threshold(profile):
    window = _window(shift=2.0)
    window["x7"] += 0.2
    report = compare(profile, window)
    x0, x7 = _feature(report, "x0"), _feature(report, "x7")
    assert x0.severity == "major" and x0.effect_name == "ks_distance" and x0.effect > 0.6
    # A 0.2 sd mean shift moves about 8% of the rows across the median: over the 0.04 default, under 0.1.
    assert x7.severity == "major" and 0.04 <= x7.effect < 0.1 and x7.psi < 0.2
    assert "KS distance" in x7.reason and ">= 0.04" in x7.reason and "(5000 rows)" in x7.reason
    regraded = compare(profile, window, monitoring=MonitoringSettings(covariate_effect_threshold=0.1))
    assert _feature(regraded, "x7").severity == "minor" and "< 0.1" in _feature(regraded, "x7").reason
    assert regraded.drifted_features == report.drifted_features  # the thresholds grade, the test decides
    strict = compare(profile, window, monitoring=MonitoringSettings(significance=1e-30))
    assert strict.drifted_features == ["x0"] and not _feature(strict, "x7").drifted


def test_empty_and_tiny_windows_say_too_little_data_and_test_nothing(profile):
    for rows in (0, 1, 29):
        report = compare(profile, _window(rows=rows, shift=5.0), label_column="label")
        assert report.too_little_data and not report.drifted and report.n_current == rows
        assert report.features == [] and report.prediction is None and report.label is None
        assert any("too little data" in note for note in report.notes)
    assert not compare(profile, _window(rows=30, shift=5.0)).too_little_data


def test_large_windows_take_the_bucketed_threaded_path_with_the_same_results(profile, monkeypatch):
    window = _window(rows=30_000, shift=0.1)
    window.loc[::7, "x2"] = np.nan
    window.loc[::11, "x3"] = np.inf
    small = compare(profile, window)
    monkeypatch.setattr(numeric, "SMALL_WINDOW", 0)
    monkeypatch.setattr(numeric, "PARALLEL_CELLS", 0)
    large = compare(profile, window)
    for a, b in zip(small.features[:20], large.features[:20], strict=True):
        assert a.current_mean == pytest.approx(b.current_mean, rel=1e-12)  # summed in another order
        a.current_mean = b.current_mean = a.mean_shift_sd = b.mean_shift_sd = None
    assert small.to_dict() == large.to_dict()
    assert _feature(small, "x2").current_shares[-1] == pytest.approx(1 / 7, abs=1e-3)


def test_late_labels_give_quality_on_the_labelled_rows_only(profile):
    window = _window(positive_share=0.5)
    window["prediction"] = window["label"]
    window.loc[window.index[:2_000], "prediction"] = 1 - window.loc[window.index[:2_000], "label"]
    window["label"] = window["label"].astype("Int64")
    window.loc[window.index[1_000:3_000], "label"] = pd.NA  # half of the wrong rows still unlabelled
    report = compare(profile, window, label_column="label")
    assert report.n_labelled == 3_000
    assert report.quality["accuracy"] == pytest.approx(2_000 / 3_000)
    assert report.reference_quality["accuracy"] == pytest.approx(0.9, abs=0.02)
    assert report.label is not None and report.label.n_current == 3_000


def test_regression_profiles_compare_predictions_and_labels_as_numeric():
    rng = np.random.default_rng(13)

    def frame(rows, scale):
        x = rng.standard_normal((rows, 3))
        y = x @ np.array([1.0, -2.0, 0.5]) * scale + rng.normal(0, 0.1, rows)
        return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})

    reference = frame(5_000, 1.0)
    profile = build_profile(
        reference, target_column="y", predictions=reference["y"].to_numpy() + 0.1, task="regression"
    )
    window = frame(3_000, 1.5)
    window["prediction"] = window["y"] / 1.5
    report = compare(profile, window, label_column="y")
    assert report.label.test == "ks" and report.label.drifted and not report.prediction.drifted
    assert not report.covariate_drift and report.prior_drift
    assert set(report.quality) == {"rmse", "mae", "r2"} and report.quality["rmse"] > report.reference_quality["rmse"]


def test_report_serializes_to_strict_json_and_flat_metrics(profile):
    report = compare(profile, _window(shift=0.3), label_column="label")
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["drifted_features"] == ["x0"] and document["severity"] == "major"
    assert {"covariate_drift", "prior_drift", "drifted", "features", "prediction", "label", "quality"} <= set(document)
    metrics = report.metrics()
    assert all(isinstance(value, float) for _, _, value in metrics)
    by_series = {(name, tuple(sorted(labels.items()))): value for name, labels, value in metrics}
    assert by_series[("shipyard_drift_feature_drifted", (("feature", "x0"), ("kind", "numeric")))] == 1.0
    assert by_series[("shipyard_drift_covariate", ())] == 1.0
    assert by_series[("shipyard_model_quality", (("metric", "accuracy"),))] == report.quality["accuracy"]
    assert sum(name == "shipyard_drift_feature_psi" for name, _, _ in metrics) == 24


def test_numeric_features_with_few_distinct_values_share_the_matrix_with_continuous_ones():
    rng = np.random.default_rng(14)

    def frame(rows, shift):
        return pd.DataFrame(
            {
                "continuous": rng.standard_normal(rows) + shift,
                "discrete": rng.integers(0, 4 + int(shift > 0), rows).astype(np.float64),
                "constant": np.ones(rows),
            }
        )

    reference, window = frame(4_000, 0.0), frame(3_000, 0.2)
    profile = build_profile(reference, target_column=None, predictions=None, task="regression")
    report = compare(profile, window)
    for item in report.features:
        edges = profile["features"][item.name]["psi_edges"]
        bins = len(edges) + 1

        def counts(values, edges=edges, bins=bins):
            return np.append(np.bincount(np.searchsorted(edges, values, side="left"), minlength=bins), 0)

        expected_psi = stats.psi(counts(reference[item.name]), counts(window[item.name]))
        exact_ks = scipy_stats.ks_2samp(reference[item.name], window[item.name]).statistic
        assert len(item.bins) == len(item.reference_shares) == len(item.current_shares) == bins + 1
        assert sum(item.current_shares) == pytest.approx(1.0)
        assert item.psi == pytest.approx(expected_psi, rel=1e-9)
        tolerance = 0.005 if item.name == "continuous" else 1e-12  # discrete: every value is a grid point
        assert exact_ks - tolerance <= item.statistic <= exact_ks + 1e-12
    assert set(report.drifted_features) == {"continuous", "discrete"}
