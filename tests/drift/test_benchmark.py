"""The drift benchmark runs small and prints its figures (it never judges times)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "drift.py"


def test_drift_benchmark_prints_times_ratios_and_memory():
    command = [sys.executable, str(BENCHMARK), "--rows", "20000", "--reference-rows", "5000", "--repeat", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    out = result.stdout
    for line in ("shipyard numeric part", "shipyard whole report", "scipy numeric part", "scipy whole report"):
        assert line in out
    assert "ratio scipy/shipyard: numeric part" in out
    assert "peak MiB" in out and "evidently" in out and "targets:" in out
    assert "drift found: features ['c1', 'x5', 'x0']" in out
