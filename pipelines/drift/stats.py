"""The statistics behind drift detection, vectorized over numpy arrays.

- `GridBinner`: exact counts of values in the bins `(-inf, g0], (g0, g1], ..., (g_last, +inf)` of a sorted grid,
  several times faster than `np.searchsorted` on large windows (a uniform bucket table resolves most values with
  arithmetic; only values in buckets that contain a grid point are searched).
- `psi`: the population stability index of two count vectors over the same bins.
- `ks_grid`: the two-sample Kolmogorov-Smirnov statistic evaluated on a grid, and its p-value.
- `categorical_test`: whether two count vectors come from one categorical distribution, valid at any size.
"""

from __future__ import annotations

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

#: Proportions below this are raised to it before PSI's logarithm, so an empty bin costs a bounded amount.
PSI_EPSILON = 1e-4

#: Expected count each bucket of a categorical test must reach (in the smaller sample); rarer ones are merged.
MIN_EXPECTED = 10

#: Values binned per block: the block's temporaries stay in cache, which matters more than anything else here.
_BLOCK = 1 << 16

#: Uniform buckets per grid point: ~1% of normal values (~5% of lognormal ones) share a bucket with a grid point.
_BUCKETS_PER_POINT = 128

#: Windows this small are sorted instead of bucketed.
_SORT_BELOW = 1 << 16

#: Grids this small are searched directly: a binary search over a few points is as fast as the bucket table.
_SMALL_GRID = 64


class GridBinner:
    """Counts values in the bins `(-inf, grid[0]], (grid[0], grid[1]], ..., (grid[-1], +inf)`.

    `counts(x)` equals `np.bincount(np.searchsorted(grid, x, side="left"), minlength=len(grid) + 1)`. It maps
    each value to a uniform bucket over the grid's range with two float operations. The bucket function is
    monotone and the grid points are bucketed by the same function, so a bucket without a grid point decides the
    bin of every value in it; a value in a bucket holding one grid point needs one comparison with it; only
    values in buckets holding several points (where the grid is much denser than the buckets) are searched.
    """

    def __init__(self, grid: np.ndarray) -> None:
        self.grid = np.asarray(grid, dtype=np.float64)
        if self.grid.ndim != 1 or np.any(np.diff(self.grid) <= 0):
            raise ValueError("grid must be one-dimensional and strictly increasing")
        self.n_bins = len(self.grid) + 1
        self._table = len(self.grid) > _SMALL_GRID and np.isfinite(self.grid[[0, -1]]).all()
        if self._table:
            self._buckets = _BUCKETS_PER_POINT * len(self.grid)
            # grid[0] falls in bucket 1 and grid[-1] in bucket `buckets`: buckets 0 and buckets + 1 hold the
            # values beyond the grid and no grid point.
            self._scale = (self._buckets - 0.5) / (self.grid[-1] - self.grid[0])
            self._offset = 1.0 - self.grid[0] * self._scale
            per_bucket = np.bincount(self._bucket(self.grid), minlength=self._buckets + 2)
            # Grid points in lower buckets are below every value of a bucket: they are its bin's lower bound.
            self._start = np.cumsum(per_bucket) - per_bucket
            self._ambiguous = per_bucket > 0
            self._crowded = per_bucket > 1
            self._first = self.grid[np.minimum(self._start, len(self.grid) - 1)]

    def _bucket(self, x: np.ndarray, out: np.ndarray | None = None, index: np.ndarray | None = None) -> np.ndarray:
        """Bucket numbers in [0, buckets + 1]: a monotone function of x."""
        t = np.multiply(x, self._scale, out=out)
        np.add(t, self._offset, out=t)
        np.clip(t, 0.0, self._buckets + 1, out=t)
        if index is None:
            return t.astype(np.intp)
        np.trunc(t, out=index, casting="unsafe")
        return index

    def _resolve(self, values: np.ndarray, buckets: np.ndarray) -> np.ndarray:
        """Bins of values lying in buckets that hold grid points."""
        bins = self._start[buckets] + (values > self._first[buckets])
        crowded = self._crowded[buckets]
        if crowded.any():
            bins[crowded] = np.searchsorted(self.grid, values[crowded], side="left")
        return bins

    def counts(self, x: np.ndarray) -> np.ndarray:
        """Counts per bin of a float64 array without NaN (int64, length `len(grid) + 1`)."""
        x = np.asarray(x, dtype=np.float64)
        if not self._table:
            return np.bincount(np.searchsorted(self.grid, x, side="left"), minlength=self.n_bins).astype(np.int64)
        per_bucket = np.zeros(self._buckets + 2, dtype=np.int64)
        resolved = np.zeros(self.n_bins, dtype=np.int64)
        size = min(_BLOCK, len(x))
        scratch = np.empty(size, dtype=np.float64)
        index = np.empty(size, dtype=np.intp)
        for start in range(0, len(x), _BLOCK):
            block = x[start : start + _BLOCK]
            n = len(block)
            buckets = self._bucket(block, out=scratch[:n], index=index[:n])
            per_bucket += np.bincount(buckets, minlength=self._buckets + 2)
            hard = self._ambiguous[buckets]
            if hard.any():
                resolved += np.bincount(self._resolve(block[hard], buckets[hard]), minlength=self.n_bins)
        per_bucket[self._ambiguous] = 0
        easy = np.bincount(self._start, weights=per_bucket, minlength=self.n_bins)
        return easy.astype(np.int64) + resolved


def grid_counts(grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Counts of NaN-free values in the bins of a sorted grid (see `GridBinner`).

    A window of fewer than `_SORT_BELOW` values is sorted and the grid points looked up in it instead: sorting a
    small array is cheaper than building the bucket table, and far cheaper than a binary search per value.
    """
    if len(x) < _SORT_BELOW:
        at_or_below = np.searchsorted(np.sort(x), grid, side="right")
        return np.diff(np.concatenate([[0], at_or_below, [len(x)]])).astype(np.int64)
    return GridBinner(grid).counts(x)


def shares(counts: np.ndarray) -> np.ndarray:
    """Proportions of a count vector (zeros when it is empty)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index: sum over bins of (c - r) * ln(c / r), proportions floored at `epsilon`.

    Equals the symmetrized Kullback-Leibler divergence KL(c || r) + KL(r || c) of the floored proportions.
    0 when either side is empty.
    """
    r, c = shares(reference_counts), shares(current_counts)
    if not (r.any() and c.any()):
        return 0.0
    return float(psi_rows(r[None, :], c[None, :], epsilon)[0])


def psi_rows(reference_shares: np.ndarray, current_shares: np.ndarray, epsilon: float = PSI_EPSILON) -> np.ndarray:
    """PSI of each row of two (rows x bins) matrices of proportions (see `psi`)."""
    r = np.maximum(reference_shares, epsilon)
    c = np.maximum(current_shares, epsilon)
    return np.sum((c - r) * np.log(c / r), axis=1)


def ks_grid(
    reference_cdf: np.ndarray, current_cdf: np.ndarray, n_reference: int, n_current: int
) -> tuple[float, float]:
    """Two-sample KS statistic max |F_ref - F_cur| over the grid points, and its asymptotic p-value.

    The CDFs are evaluated at the same points (the reference's quantile grid). Over a subset of points the
    statistic is at most the exact one, and the p-value uses the limiting Kolmogorov distribution of
    sqrt(n m / (n + m)) D, which is itself slightly conservative at these sample sizes: both err towards
    fewer false alarms. Returns (0, 1) when either sample is empty.
    """
    if n_reference == 0 or n_current == 0:
        return 0.0, 1.0
    statistic = float(np.max(np.abs(np.asarray(reference_cdf) - np.asarray(current_cdf)), initial=0.0))
    effective = n_reference * n_current / (n_reference + n_current)
    return statistic, float(special.kolmogorov(np.sqrt(effective) * statistic))


def merged_buckets(table: np.ndarray, min_expected: float) -> np.ndarray:
    """A 2 x K table of counts (reference, window) with rare buckets merged until each expects `min_expected`.

    A bucket's expected count is its reference share times the smaller sample's size: what that sample should
    hold under no drift. Buckets are merged rarest first (unseen and missing values, with no reference share, go
    first); a last group still under the bound joins the one before. The merging depends on the reference and
    the sizes only, never on the window's values.
    """
    rows = table.sum(axis=1)
    expected = min(rows) * table[0] / rows[0]
    group = np.empty(table.shape[1], dtype=np.intp)
    current, filled = 0, 0.0
    for bucket in np.argsort(expected, kind="stable"):
        group[bucket] = current
        filled += expected[bucket]
        if filled >= min_expected:
            current, filled = current + 1, 0.0
    if filled > 0 and current > 0:
        group[group == current] = current - 1
    merged = np.zeros((2, group.max() + 1))
    np.add.at(merged.T, group, table.T)
    return merged


def categorical_test(
    reference_counts: np.ndarray, current_counts: np.ndarray, min_expected: float = MIN_EXPECTED
) -> tuple[str, float, float]:
    """A homogeneity test of two count vectors valid at any sample size: (test name, statistic, p-value).

    Rare buckets are merged to `min_expected` expected counts (`merged_buckets`). Three groups or more: the
    Cressie-Read power-divergence statistic (lambda 2/3, better calibrated than Pearson's in sparse tables) against
    its chi-square law ("cressie-read"). Two groups, or a single one (every bucket rare: then the most frequent
    reference bucket against all others): Fisher's exact test of the 2 x 2 table ("fisher"). The statistic is the
    power divergence of the merged table either way. ("none", 0, 1) when there is nothing to test (an empty
    sample, fewer than two values seen).
    """
    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return "none", 0.0, 1.0
    merged = merged_buckets(table, min_expected)
    if merged.shape[1] < 2:
        top = int(np.argmax(table[0]))
        merged = np.column_stack([table[:, top], table.sum(axis=1) - table[:, top]])
    divergence = scipy_stats.chi2_contingency(merged, correction=False, lambda_="cressie-read")
    if merged.shape[1] >= 3:
        return "cressie-read", float(divergence.statistic), float(divergence.pvalue)
    return "fisher", float(divergence.statistic), float(scipy_stats.fisher_exact(merged).pvalue)
