"""The drift statistics against scipy.stats and numpy on small cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from pipelines.drift import stats
from pipelines.drift.profile import numeric_distribution


def _searchsorted_counts(grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(grid, x, side="left"), minlength=len(grid) + 1)


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).standard_normal(200_000),
        np.random.default_rng(2).lognormal(0.0, 2.0, 200_000),  # dense grid near 0, sparse tail
        np.random.default_rng(3).standard_cauchy(200_000),  # extreme outliers
        np.random.default_rng(4).integers(0, 7, 200_000).astype(np.float64),  # a grid small enough to search
        np.random.default_rng(4).integers(0, 1000, 200_000).astype(np.float64),  # values equal to grid points
    ],
    ids=["normal", "lognormal", "cauchy", "few-integers", "many-integers"],
)
def test_grid_binner_counts_exactly_like_searchsorted(values):
    rng = np.random.default_rng(0)
    grid = np.unique(np.quantile(values[:5000], np.linspace(0.001, 0.999, 400)))
    window = np.concatenate([values, grid, grid[:50] + 1e-12, [-np.inf, np.inf, grid[0] - 1e9, grid[-1] + 1e9]])
    rng.shuffle(window)
    np.testing.assert_array_equal(stats.GridBinner(grid).counts(window), _searchsorted_counts(grid, window))
    np.testing.assert_array_equal(stats.grid_counts(grid, window[:1000]), _searchsorted_counts(grid, window[:1000]))


def test_grid_binner_rejects_an_unsorted_grid():
    with pytest.raises(ValueError, match="strictly increasing"):
        stats.GridBinner(np.array([1.0, 1.0, 2.0]))


def test_psi_is_the_symmetrized_kl_divergence_of_the_histograms():
    rng = np.random.default_rng(5)
    reference, current = rng.normal(0, 1, 3000), rng.normal(0.3, 1.2, 2000)
    edges = np.concatenate([[-np.inf], np.quantile(reference, np.linspace(0.1, 0.9, 9)), [np.inf]])
    r, c = np.histogram(reference, edges)[0], np.histogram(current, edges)[0]
    expected = scipy_stats.entropy(c / c.sum(), r / r.sum()) + scipy_stats.entropy(r / r.sum(), c / c.sum())
    assert stats.psi(r, c) == pytest.approx(expected, rel=1e-9)
    assert stats.psi(r, r) == 0.0
    assert stats.psi(r, np.zeros_like(c)) == 0.0  # nothing to compare: no signal


def test_psi_floors_empty_bins_instead_of_diverging():
    value = stats.psi(np.array([50, 50, 0]), np.array([0, 50, 50]))
    assert np.isfinite(value) and value > 1


def test_ks_on_the_reference_grid_matches_scipy_ks_2samp():
    rng = np.random.default_rng(6)
    for shift in (0.0, 0.05, 0.2):
        reference, current = rng.standard_normal(4000), rng.standard_normal(3000) + shift
        profile = numeric_distribution(reference)
        grid = np.asarray(profile["grid"])
        reference_cdf = np.cumsum(profile["counts"]) / profile["n"]
        current_cdf = np.cumsum(_searchsorted_counts(grid, current)) / len(current)
        statistic, p_value = stats.ks_grid(reference_cdf, current_cdf, len(reference), len(current))
        exact = scipy_stats.ks_2samp(reference, current, method="asymp")
        # The grid holds 500 quantiles: the statistic is never overstated, and understated by < 1/500 + noise.
        assert exact.statistic - 0.005 <= statistic <= exact.statistic + 1e-12
        assert p_value >= exact.pvalue * 0.5
        if shift == 0.2:
            assert p_value < 1e-10


def test_ks_p_value_is_scipys_asymptotic_one_for_the_same_statistic():
    rng = np.random.default_rng(7)
    reference, current = rng.standard_normal(20_000), rng.standard_normal(10_000) + 0.03
    grid = np.sort(reference)[:-1]  # every reference value a grid point: the exact statistic
    reference_cdf = np.append(np.arange(1, len(reference)) / len(reference), 1.0)
    current_cdf = np.cumsum(_searchsorted_counts(grid, current)) / len(current)
    statistic, p_value = stats.ks_grid(reference_cdf, current_cdf, len(reference), len(current))
    exact = scipy_stats.ks_2samp(reference, current, method="asymp")
    assert statistic == pytest.approx(exact.statistic, abs=1e-12)
    assert p_value == pytest.approx(exact.pvalue, rel=0.05)  # limiting law vs scipy's finite-n one
    assert stats.ks_grid(reference_cdf, current_cdf, len(reference), 0) == (0.0, 1.0)


def test_categorical_test_is_cressie_read_on_well_filled_tables_and_matches_scipy():
    reference, current = np.array([500, 300, 150, 50, 0]), np.array([240, 160, 60, 35, 0])
    test, statistic, p_value = stats.categorical_test(reference, current)
    expected = scipy_stats.chi2_contingency(
        np.vstack([reference, current])[:, :4], correction=False, lambda_="cressie-read"
    )
    assert test == "cressie-read"
    assert (statistic, p_value) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-9)
    assert stats.categorical_test(np.array([10, 0]), np.array([5, 0])) == ("none", 0.0, 1.0)
    assert stats.categorical_test(np.array([10, 5]), np.array([0, 0])) == ("none", 0.0, 1.0)


def test_rare_buckets_are_merged_by_the_reference_and_sparse_tables_use_fishers_exact_test():
    reference = np.array([6_000, 2_000, 1_000, 500, 300, 200, 0])  # the last bucket: never seen in the reference
    table = stats.merged_buckets(np.vstack([reference, [18, 6, 3, 1, 1, 0, 1]]).astype(float), 10)
    assert table.shape == (2, 2) and table.sum() == 10_030 and sorted(table[0]) == [4_000, 6_000]
    # One never-seen value in a 30-row window is no evidence (its chi-square p-value would be ~1e-35).
    test, _, p_value = stats.categorical_test(reference, np.array([18, 6, 3, 1, 1, 0, 1]))
    assert test == "fisher" and p_value > 0.5
    # Every bucket rare (3 rows): the most frequent against the others, exactly.
    test, _, p_value = stats.categorical_test(np.array([9_000, 1_000]), np.array([0, 3]))
    assert test == "fisher" and p_value == pytest.approx(scipy_stats.fisher_exact([[9_000, 1_000], [0, 3]]).pvalue)
    # A new value taking two thirds of a 30-row window is found (merging costs power only in tiny windows).
    assert stats.categorical_test(reference, np.array([5, 2, 2, 1, 0, 0, 20]))[2] < 1e-5
