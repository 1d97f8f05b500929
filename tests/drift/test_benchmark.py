"""The drift benchmark runs small and prints its figures (it never judges times)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "benchmarks" / "drift.py"


def test_drift_benchmark_prints_times_ratios_and_memory():
    command = [sys.executable, str(BENCHMARK), "--rows", "20000", "--reference-rows", "5000", "--repeat", "1"]
    # The script's own folder comes first on its sys.path: name the tree under test, not whatever is installed.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True, env=env)
    out = result.stdout
    for line in ("shipyard numeric part", "shipyard whole report", "scipy numeric part", "scipy whole report"):
        assert line in out
    assert "ratio scipy/shipyard: numeric part" in out
    assert "peak MiB" in out and "evidently" in out and "targets:" in out
    assert "drift found: features ['c1', 'x5', 'x0']" in out
