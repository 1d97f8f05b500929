"""The statistics behind drift detection, vectorized over numpy arrays.

- `GridBinner`: exact counts of values in the bins `(-inf, g0], (g0, g1], ..., (g_last, +inf)` of a sorted grid,
  several times faster than `np.searchsorted` on large windows (a uniform bucket table resolves most values with
  arithmetic; only values in buckets that contain a grid point are searched).
- `psi`: the population stability index of two count vectors over the same bins.
- `ks_grid`: the two-sample Kolmogorov-Smirnov statistic evaluated on a grid, and its p-value.
- `chi2_homogeneity`: the chi-square test that two count vectors come from one categorical distribution.
"""

from __future__ import annotations

import numpy as np
from scipy import special

#: Proportions below this are raised to it before PSI's logarithm, so an empty bin costs a bounded amount.
PSI_EPSILON = 1e-4

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


def chi2_homogeneity(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity on the 2 x K table of two count vectors: (statistic, p-value).

    Categories empty in both samples are dropped; degrees of freedom are the remaining categories minus one.
    Same as `scipy.stats.chi2_contingency(table, correction=False)`. (0, 1) when there is nothing to test.
    """
    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or np.any(rows == 0):
        return 0.0, 1.0
    expected = np.outer(rows, table.sum(axis=0)) / rows.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(special.chdtrc(table.shape[1] - 1, statistic))

