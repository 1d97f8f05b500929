"""Drift monitoring: covariate shift, prior shift and quality of a window of inference data, against the reference
profile stored with the model version.

    profile = build_profile(train_frame, target_column="label", predictions=model.predict(X), task="classification")
    report = compare(profile, window, label_column="label", covariate_threshold=0.2, prior_threshold=0.1,
                     significance=0.01)
    report.to_dict(); render_html(report); sink.emit(report.metrics(), model=name, version=version)

What is measured, per distribution (every feature; the predictions; the labels of the labelled rows):

- numeric: the two-sample Kolmogorov-Smirnov statistic D, with both CDFs evaluated exactly at the reference's
  quantile grid (500 quantiles kept in the profile; D is resolved to about 0.002 and never overstated); missing
  values count as +inf, so a change in the missing rate moves D too. p-value: the limiting Kolmogorov distribution
  of sqrt(n m / (n + m)) D with n the reference rows (from the profile) and m the window rows. PSI over the
  reference deciles plus a missing bucket. The mean shift in reference standard deviations is reported.
- categorical (and the classes of a classifier): Pearson's chi-square test of homogeneity between the reference
  counts and the window counts over the reference categories, `other` (unseen or rare values) and `missing`; PSI
  over the same buckets.
- quality, when labels are present: accuracy (classification) or rmse, mae and r2 (regression) of `prediction`
  against the label on the labelled rows, beside the same metrics on the reference rows.

Decision rule (the evidence decides, PSI grades):

1. The tests of one report (every feature, the predictions, the labels) form one family. Their p-values are
   adjusted with Benjamini-Hochberg; a distribution has *drifted* when its adjusted p-value is <= `significance`
   (default 0.01). When nothing drifted, BH at level q keeps the chance of any alarm at most q however many
   features there are; when some did, the expected share of false discoveries among the flagged is at most q.
2. PSI grades what drifted: a drifted feature is `major` when its PSI >= `covariate_threshold` (0.2, the customary
   "significant shift" mark) and `minor` below it; predictions and labels use `prior_threshold` (0.1). PSI does not
   decide on its own, in either direction: a 0.25-standard-deviation mean shift is a real, detectable shift with a
   PSI of only about 0.06, while on a small window PSI is noise (its expectation without any shift is about
   (bins - 1)(1/n + 1/m), 0.09 at m = 100 rows). A PSI over the threshold that is not significant means the
   window is too small to tell, and is not an alarm.
3. `covariate_drift`: some feature drifted; `prior_drift`: the predictions or the labels drifted; `drifted`:
   either; `severity`: the highest of `none` / `minor` / `major`. A monitor that should act only on large shifts
   acts on `severity == "major"`.

Verified in tests/drift (seeded) with a reference of 10,000 rows (the size of a typical training set; the profile
keeps its exact row count, which the p-values use) and windows of 5,000 rows of 20 numeric and 4 categorical
features: false alarms on unshifted data in at most 2% of 200 trials, a 0.25-sd mean shift of one feature of twenty
found in at least 95% of 100 trials, a class balance moving from 50/50 to 70/30 found as prior shift in 20 of 20.
Observed: no false alarm in those 200 trials (6 in a longer run of 1,000: 0.6%, under the 1% BH bound), the shift
found in 100 of 100.

Speed (`pipelines.drift.numeric`): all numeric features go through a few matrix operations on their cumulative
counts at the grid points. A small window is sorted as one block; a large one is bucketed column by column against
the reference grid (two float operations and a table lookup per value, one comparison for a value sharing its
bucket with a grid point, a binary search only where the grid is denser than the buckets; in cache-sized blocks,
columns on several threads); see benchmarks/drift.py.
"""

from pipelines.drift.html import render_html
from pipelines.drift.profile import build_profile
from pipelines.drift.report import DistributionDrift, DriftReport, compare
from pipelines.sinks import Metric

__all__ = ["DistributionDrift", "DriftReport", "Metric", "build_profile", "compare", "render_html"]
