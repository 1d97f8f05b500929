"""The statistical targets of drift detection, on seeded synthetic data (issue 3, part 7).

Every trial draws a fresh reference of REFERENCE_ROWS rows (its profile is what a model version carries) and a
fresh window of WINDOW_ROWS rows, so the trials are independent. Features: 20 numeric, 4 categorical; the
predictions and the labels are compared too, so each report runs 26 tests.
"""

from __future__ import annotations

import numpy as np

from pipelines.drift import compare

from .synthetic import REFERENCE_ROWS, WINDOW_ROWS, make_frame, reference_profile

TRIALS = 200
POWER_TRIALS = 100


def _trial(seed: int, **window) -> tuple[dict, object]:
    rng = np.random.default_rng([2026, seed])
    profile = reference_profile(make_frame(rng, REFERENCE_ROWS))
    report = compare(profile, make_frame(rng, WINDOW_ROWS, **window), label_column="label")
    return profile, report


def test_unshifted_windows_alarm_in_at_most_two_percent_of_trials():
    alarms = [_trial(seed)[1].drifted for seed in range(TRIALS)]
    rate = sum(alarms) / TRIALS
    print(f"false alarms on unshifted data: {sum(alarms)} of {TRIALS} trials ({rate:.1%})")
    assert rate <= 0.02


def test_quarter_sd_shift_of_one_feature_in_twenty_is_found_in_95_percent_of_trials():
    found = others = 0
    for seed in range(POWER_TRIALS):
        report = _trial(10_000 + seed, shift=0.25)[1]
        found += "x0" in report.drifted_features
        others += any(name != "x0" for name in report.drifted_features)
        # Graded by its effect: a 0.25 sd shift moves ~10% of the rows across the median (KS distance ~0.1 over
        # the 0.04 threshold), though its PSI (~0.06) is far under 0.2.
        x0 = next(item for item in report.features if item.name == "x0")
        assert x0.psi < report.monitoring.covariate_threshold
        assert abs(x0.mean_shift_sd - 0.25) < 0.1
        assert x0.severity == ("major" if x0.drifted else "none")
    print(f"0.25 sd shift found in {found} of {POWER_TRIALS} trials; other features flagged in {others}")
    assert found / POWER_TRIALS >= 0.95
    assert others / POWER_TRIALS <= 0.05


def test_class_balance_moving_from_50_50_to_70_30_is_prior_shift():
    for seed in range(20):
        report = _trial(20_000 + seed, positive_share=0.7)[1]
        assert report.prior_drift, f"trial {seed}: prior shift missed"
        assert report.label is not None and report.label.drifted
        assert report.prediction is not None and report.prediction.drifted
        # Labels moving 50/50 -> 70/30 have a PSI of ~0.17, over the 0.1 prior threshold: a major shift.
        assert report.label.severity == "major"


def test_prior_shift_is_found_from_predictions_alone_before_labels_arrive():
    rng = np.random.default_rng(7)
    profile = reference_profile(make_frame(rng, REFERENCE_ROWS))
    window = make_frame(rng, WINDOW_ROWS, positive_share=0.7).drop(columns="label")
    report = compare(profile, window, label_column="label")
    assert report.prior_drift and report.prediction.drifted
    assert report.label is None and report.n_labelled == 0 and not report.quality
    assert not report.covariate_drift
