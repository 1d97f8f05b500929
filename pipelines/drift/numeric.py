"""Numeric drift of all numeric features at once: the window's CDFs on the reference grids, then KS, PSI and the
mean shift as vectorized operations over a (features x grid points) matrix.

The profile's grids differ in length (ties are deduplicated), so they are stacked into a matrix padded at the
end: a padded point stands at +inf, where both CDFs equal their share of non-missing values. Cumulative counts
`C[j, i]` are the values of feature j at or below its i-th grid point; the last column counts every non-missing
value, so the rows carry missing values as +inf (see `pipelines.drift`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from scipy import special

from pipelines.drift import stats

#: Windows with fewer rows are copied into one block and sorted at once; larger ones are bucketed per column.
SMALL_WINDOW = 1 << 16

#: Window cells (rows x columns) from which columns are processed on several threads.
PARALLEL_CELLS = 1_000_000

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(function: Callable[[T], R], items: Iterable[T], cells: int) -> list[R]:
    """`map`, on a few threads when the work (`cells` values) is large: numpy and pyarrow release the GIL."""
    items = list(items)
    workers = min(4, os.cpu_count() or 1, len(items))
    if cells < PARALLEL_CELLS or workers < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def _padded(rows: Sequence[np.ndarray], width: int) -> np.ndarray:
    """Rows of cumulative counts padded at the end with their last value, as a (len(rows), width) matrix."""
    out = np.empty((len(rows), width), dtype=np.int64)
    for j, row in enumerate(rows):
        out[j, : len(row)] = row
        out[j, len(row) :] = row[-1]
    return out


@dataclass(frozen=True)
class NumericReferences:
    """The numeric distributions of a profile, stacked (see the module docstring)."""

    names: list[str]
    grids: list[np.ndarray]
    edges: list[list[float]]
    cumulative: np.ndarray
    n: np.ndarray
    edge_columns: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_profiles(cls, profiles: dict[str, dict[str, Any]]) -> NumericReferences:
        """Stack the numeric distributions of a profile (`pipelines.drift.profile` layout), in order."""
        names = list(profiles)
        grids = [np.asarray(profiles[name]["grid"], dtype=np.float64) for name in names]
        edges = [list(profiles[name]["psi_edges"]) for name in names]
        width = max((len(grid) for grid in grids), default=0) + 1
        rows = [np.cumsum(np.asarray(profiles[name]["counts"], dtype=np.int64)) for name in names]
        # PSI bin boundaries as columns of [0 | cumulative]: padded at the front with column 0 (empty bins).
        most = max((len(e) for e in edges), default=0)
        edge_columns = np.zeros((len(names), most), dtype=np.intp)
        for j, (grid, cut) in enumerate(zip(grids, edges, strict=True)):
            if cut:
                edge_columns[j, most - len(cut) :] = np.searchsorted(grid, cut) + 1
        described = [(profiles[name].get("mean"), profiles[name].get("std")) for name in names]
        return cls(
            names=names,
            grids=grids,
            edges=edges,
            cumulative=_padded(rows, width),
            n=np.array([int(profiles[name]["n"]) for name in names], dtype=np.int64),
            edge_columns=edge_columns,
            mean=np.array([np.nan if m is None else m for m, _ in described], dtype=np.float64),
            std=np.array([np.nan if s is None else s for _, s in described], dtype=np.float64),
        )

    @property
    def width(self) -> int:
        """Columns of the cumulative matrices: the longest grid plus the all-values column."""
        return self.cumulative.shape[1]

    def psi_bins(self, cumulative: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Counts per PSI bin (front-padded with empty bins), then above the last edge, then missing."""
        with_zero = np.concatenate([np.zeros((len(cumulative), 1), dtype=np.int64), cumulative], axis=1)
        bounds = np.take_along_axis(with_zero, self.edge_columns, axis=1)
        bounds = np.concatenate([np.zeros((len(bounds), 1), dtype=np.int64), bounds, cumulative[:, -1:]], axis=1)
        return np.concatenate([np.diff(bounds, axis=1), (n - cumulative[:, -1])[:, None]], axis=1)


@dataclass(frozen=True)
class WindowCounts:
    """The window's cumulative counts on the reference grids, rows tested and mean of each numeric feature."""

    cumulative: np.ndarray
    n: np.ndarray
    mean: np.ndarray


def _column_counts(grid: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, float]:
    """Cumulative counts of one (large) column on its grid, and its mean over finite values."""
    with np.errstate(invalid="ignore", over="ignore"):  # +inf and -inf together sum to NaN: handled below
        total = float(values.sum()) if len(values) else 0.0
    if np.isfinite(total):
        valid, mean = values, (total / len(values) if len(values) else np.nan)
    else:
        valid = values[~np.isnan(values)]
        finite = valid[np.isfinite(valid)]
        mean = float(finite.mean()) if len(finite) else np.nan
    return np.cumsum(stats.grid_counts(grid, valid)), mean


def window_counts(references: NumericReferences, columns: Sequence[np.ndarray], tested: np.ndarray) -> WindowCounts:
    """Count the window's numeric features (float64 `columns`, NaN = missing or left out) on the reference grids.

    `tested` is the rows tested per feature: the window's rows minus the cells left out (see
    `pipelines.drift.quality`), so a left-out cell counts neither as a value nor as missing. A small window is
    copied into one (rows x features) block, sorted once, and each grid looked up in its sorted column; a large
    one is bucketed column by column (`stats.GridBinner`), on several threads, without copying.
    """
    n = len(columns[0]) if columns else 0
    if n < SMALL_WINDOW:
        block = np.empty((n, len(columns)), dtype=np.float64, order="F")
        for j, column in enumerate(columns):
            block[:, j] = column
        finite = np.isfinite(block)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(finite, block, 0.0).sum(axis=0) / np.count_nonzero(finite, axis=0)
        block.sort(axis=0)  # NaN sorts last
        valid = n - np.count_nonzero(np.isnan(block), axis=0)
        rows = [
            np.append(np.searchsorted(block[: valid[j], j], grid, side="right"), valid[j])
            for j, grid in enumerate(references.grids)
        ]
    else:
        counted = parallel_map(
            lambda j: _column_counts(references.grids[j], columns[j]), range(len(columns)), n * len(columns)
        )
        rows = [row for row, _ in counted]
        mean = np.array([m for _, m in counted], dtype=np.float64)
    cumulative = _padded(rows, references.width) if rows else np.zeros((0, 1), np.int64)
    return WindowCounts(cumulative, np.asarray(tested, dtype=np.int64), mean)


@dataclass(frozen=True)
class NumericStatistics:
    """Per-feature vectors (and matrices) of the numeric comparison."""

    ks: np.ndarray
    p_value: np.ndarray
    psi: np.ndarray
    reference_shares: np.ndarray
    current_shares: np.ndarray
    reference_cdf: np.ndarray
    current_cdf: np.ndarray
    mean_shift_sd: np.ndarray


def statistics(references: NumericReferences, window: WindowCounts) -> NumericStatistics:
    """KS (with p-values), PSI and mean shift of every numeric feature, as a few matrix operations."""
    n_current = window.n
    reference_cdf = references.cumulative / np.maximum(references.n, 1)[:, None]
    current_cdf = window.cumulative / np.maximum(n_current, 1)[:, None]
    ks = np.where(n_current > 0, np.max(np.abs(reference_cdf - current_cdf), axis=1, initial=0.0), 0.0)
    effective = references.n * n_current / np.maximum(references.n + n_current, 1)
    p_value = np.where(ks > 0, special.kolmogorov(np.sqrt(effective) * ks), 1.0)
    reference_bins = references.psi_bins(references.cumulative, references.n)
    current_bins = references.psi_bins(window.cumulative, n_current)
    reference_shares = reference_bins / np.maximum(references.n, 1)[:, None]
    current_shares = current_bins / np.maximum(n_current, 1)[:, None]
    psi = np.where(n_current > 0, stats.psi_rows(reference_shares, current_shares), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(references.std > 0, (window.mean - references.mean) / references.std, np.nan)
    return NumericStatistics(ks, p_value, psi, reference_shares, current_shares, reference_cdf, current_cdf, shift)
