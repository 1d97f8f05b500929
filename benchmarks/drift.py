"""Drift report benchmark: shipyard's `compare` beside a per-column scipy.stats baseline and Evidently.

    .venv/bin/python benchmarks/drift.py [--rows 1000000] [--reference-rows 100000] [--repeat 3]

One seeded window of `--rows` rows (20 numeric, 4 categorical string features, a class prediction; three
features and the class balance shifted) is compared with a reference of `--reference-rows` rows whose profile is
built once, outside the timings. Timed on the same data in one run:

- shipyard: the numeric part (KS + PSI of the 20 numeric features) and the whole report (every feature, the
  predictions, the decision), best of `--repeat`;
- scipy baseline: the same statistics per column, the usual way: `scipy.stats.ks_2samp` against the raw
  reference column, PSI from `np.histogram` on the reference deciles, `scipy.stats.chi2_contingency` on the
  category counts (one run);
- Evidently's DataDriftPreset, when `evidently` imports.

Prints wall times, ratios to the baseline and peak traced memory (tracemalloc, a separate run) against the size
of the window. Targets: numeric part <= 1 s, >= 10x faster than the baseline, peak memory < 2x the window. It
reports; it never fails on a time.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pipelines.drift import build_profile, compare, numeric, render_html
from pipelines.drift.report import feature_drift
from pipelines.drift.stats import psi

NUMERIC = 20
CATEGORIES = {"c0": 5, "c1": 12, "c2": 30, "c3": 3}
#: What the newest Evidently on PyPI did when this benchmark was written (kept so the skip line says why).
EVIDENTLY_NOTE = "evidently 0.7.23 imports pandas.core.dtypes.common.infer_dtype_from_object, gone in pandas 3"


def make_frame(rows: int, seed: int, *, shifted: bool) -> pd.DataFrame:
    """Seeded data: 20 numeric features of varied shapes, 4 string categoricals, a class prediction."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(NUMERIC):
        if i % 4 == 3:
            data[f"x{i}"] = rng.lognormal(0.0, 1.0, rows)
        else:
            data[f"x{i}"] = rng.normal(i, 1.0 + i / 10, rows)
    if shifted:
        data["x0"] += 0.1
        data["x5"] *= 1.3
    for name, size in CATEGORIES.items():
        weights = np.arange(size, 0, -1, dtype=np.float64)
        if shifted and name == "c1":
            weights = weights[::-1]
        labels = np.array([f"{name}_{k}" for k in range(size)], dtype=object)
        data[name] = pd.array(labels[rng.choice(size, rows, p=weights / weights.sum())], dtype="str")
    data["prediction"] = (rng.random(rows) < (0.6 if shifted else 0.5)).astype(np.int64)
    return pd.DataFrame(data)


def scipy_baseline(reference: pd.DataFrame, edges: dict[str, np.ndarray], window: pd.DataFrame, numeric_only: bool):
    """Per-column statistics with scipy: KS against the raw reference, PSI via np.histogram, chi-square."""
    results = {}
    for i in range(NUMERIC):
        name = f"x{i}"
        ref, cur = reference[name].to_numpy(), window[name].to_numpy()
        ks = stats.ks_2samp(ref, cur, method="asymp")
        bins = np.concatenate([[-np.inf], edges[name], [np.inf]])
        results[name] = (ks.statistic, ks.pvalue, psi(np.histogram(ref, bins)[0], np.histogram(cur, bins)[0]))
    if numeric_only:
        return results
    for name in [*CATEGORIES, "prediction"]:
        table = pd.concat([reference[name].value_counts(), window[name].value_counts()], axis=1).fillna(0)
        chi2 = stats.chi2_contingency(table.to_numpy().T, correction=False)
        results[name] = (chi2.statistic, chi2.pvalue, psi(table.iloc[:, 0].to_numpy(), table.iloc[:, 1].to_numpy()))
    return results


def evidently_runner(reference: pd.DataFrame, window: pd.DataFrame) -> tuple[Callable[[], Any] | None, str]:
    """A callable running Evidently's data-drift preset, or None and why it is unavailable."""
    try:
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except Exception as error:  # any import failure means: not usable here
        return None, f"{type(error).__name__}: {error}; {EVIDENTLY_NOTE}"
    columns = [*(f"x{i}" for i in range(NUMERIC)), *CATEGORIES]
    return lambda: Report([DataDriftPreset()]).run(window[columns], reference[columns]), ""


def best_time(function: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `repeat` runs; CPU time counts every thread of the process."""
    best = (math.inf, math.inf)
    for _ in range(repeat):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def one_thread(function: Callable[[], Any]) -> Callable[[], Any]:
    """`function` with the drift module's column threads turned off."""

    def run() -> Any:
        saved, numeric.PARALLEL_CELLS = numeric.PARALLEL_CELLS, sys.maxsize
        try:
            return function()
        finally:
            numeric.PARALLEL_CELLS = saved

    return run


def peak_memory(function: Callable[[], Any]) -> int:
    """Peak bytes allocated (tracemalloc) while `function` runs, beyond what was allocated before."""
    gc.collect()
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="window rows")
    parser.add_argument("--reference-rows", type=int, default=100_000, help="reference rows")
    parser.add_argument("--repeat", type=int, default=3, help="runs of shipyard's timings (best is kept)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    reference = make_frame(args.reference_rows, args.seed, shifted=False)
    window = make_frame(args.rows, args.seed + 1, shifted=True)
    profile = build_profile(
        reference, target_column=None, predictions=reference["prediction"].to_numpy(), task="classification"
    )
    edges = {name: np.asarray(p["psi_edges"]) for name, p in profile["features"].items() if p["kind"] == "numeric"}
    numeric_bytes = int(window[[f"x{i}" for i in range(NUMERIC)]].memory_usage(index=False, deep=True).sum())
    window_bytes = int(window.memory_usage(index=False, deep=True).sum())

    ours_numeric = lambda: feature_drift(profile, window, kind="numeric")  # noqa: E731
    ours_full = lambda: compare(profile, window)  # noqa: E731
    base_numeric = lambda: scipy_baseline(reference, edges, window, numeric_only=True)  # noqa: E731
    base_full = lambda: scipy_baseline(reference, edges, window, numeric_only=False)  # noqa: E731

    report = ours_full()
    html_time = best_time(lambda: render_html(report), 1)[0]
    measured = [
        ("shipyard numeric part", ours_numeric, args.repeat, numeric_bytes),
        ("shipyard numeric, 1 thread", one_thread(ours_numeric), args.repeat, numeric_bytes),
        ("shipyard whole report", ours_full, args.repeat, window_bytes),
        ("scipy numeric part", base_numeric, 1, numeric_bytes),
        ("scipy whole report", base_full, 1, window_bytes),
    ]
    rows = {name: (*best_time(run, repeat), peak_memory(run), size) for name, run, repeat, size in measured}
    print(
        f"window: {args.rows:,} rows x ({NUMERIC} numeric + {len(CATEGORIES)} categorical + prediction), "
        f"{window_bytes / 2**20:.1f} MiB ({numeric_bytes / 2**20:.1f} MiB numeric); "
        f"reference: {args.reference_rows:,} rows, profile built outside the timings"
    )
    print(f"{'':28}{'wall s':>9}{'cpu s':>9}{'peak MiB':>10}{'peak/data':>11}")
    for name, (wall, cpu, peak, size) in rows.items():
        print(f"{name:28}{wall:9.3f}{cpu:9.3f}{peak / 2**20:10.1f}{peak / size:10.2f}x")
    numeric_ratio = rows["scipy numeric part"][0] / rows["shipyard numeric part"][0]
    whole_ratio = rows["scipy whole report"][0] / rows["shipyard whole report"][0]
    cpu_ratio = rows["scipy numeric part"][1] / rows["shipyard numeric part"][1]
    print(
        f"ratio scipy/shipyard: numeric part {numeric_ratio:.1f}x (CPU time {cpu_ratio:.1f}x), "
        f"whole report {whole_ratio:.1f}x"
    )
    print(f"html render (top 20 features): {html_time:.3f} s")
    runner, reason = evidently_runner(reference, window)
    if runner is None:
        print(f"evidently: unavailable ({reason})")
    else:
        seconds = best_time(runner, 1)[0]
        print(
            f"evidently DataDriftPreset: {seconds:.3f} s, ratio evidently/shipyard whole report "
            f"{seconds / rows['shipyard whole report'][0]:.1f}x"
        )
    print(
        f"drift found: features {report.drifted_features}, prior drift {report.prior_drift}, severity {report.severity}"
    )
    print(
        f"targets: numeric part <= 1 s: {rows['shipyard numeric part'][0] <= 1.0}; "
        f">= 10x scipy: {numeric_ratio >= 10}; peak < 2x window: {rows['shipyard whole report'][2] < 2 * window_bytes}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
