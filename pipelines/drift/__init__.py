"""Drift monitoring: covariate shift, prior shift and quality of a window of inference data, against the reference
profile stored with the model version.

    profile = build_profile(train_frame, target_column="label", predictions=model.predict(X), task="classification")
    report = compare(profile, window, label_column="label", monitoring=config.monitoring)  # MonitoringSettings
    report.to_dict(); render_html(report); sink.emit(report.metrics(), model=name, version=version)

What is measured, per distribution (every feature; the predictions; the labels of the labelled rows):

- numeric: the two-sample Kolmogorov-Smirnov statistic D, with both CDFs evaluated exactly at the reference's
  quantile grid (500 quantiles kept in the profile; D is resolved to about 0.002 and never overstated); missing
  values count as +inf, so a change in the missing rate moves D too. p-value: the limiting Kolmogorov distribution
  of sqrt(n m / (n + m)) D with n the reference rows (from the profile) and m the window rows (conservative at
  every size). PSI over the reference deciles plus a missing bucket. The mean shift in reference sd is reported.
- categorical (and the classes of a classifier): a homogeneity test of the reference counts and the window counts
  over the reference categories, `other` (unseen values) and `missing`, valid at any window size: buckets expecting
  fewer than 10 rows in the smaller sample are merged (rarest first, by the reference alone), then Cressie-Read's
  power divergence against its chi-square law, or Fisher's exact test when two groups remain (see
  `stats.categorical_test`). One never-seen value in a 30-row window is no evidence. PSI over the same buckets.
- quality, when labels are present: accuracy (classification) or rmse, mae and r2 (regression) of `prediction`
  against the label on the labelled rows, beside the same metrics on the reference rows.

Effect sizes (what a grade means):

- `ks_distance` (numeric features, regression predictions and labels) and `total_variation` (categorical
  features): the largest share of rows that moved across one value (KS D) or changed category (half the summed
  share differences). Both read "this share of the traffic is not where the reference puts it". A mean shift of
  d sd of a normal feature has D = 2 Phi(d / 2) - 1: 0.04 at 0.1 sd, 0.12 at 0.3 sd; moving the top 7% of a
  feature's values past the rest gives about 0.055-0.07 whatever the distribution.
- `class_share_change` (a classifier's predictions and labels): the largest relative change of a class share,
  |c - r| / r: 50/50 -> 58/42 is 0.16.

Decision rule (the evidence decides whether, the effect decides how much):

0. A window under `min_window_rows` rows (30) is "too little data": nothing is tested, nothing drifts; the labels
   likewise need `min_window_rows` labelled rows.
1. The tests of one report (every feature, the predictions, the labels) form one family. Their p-values are
   adjusted with Benjamini-Hochberg (`scipy.stats.false_discovery_control`); a distribution has *drifted* when
   its adjusted p-value is <= `significance` (default 0.01). When nothing drifted, BH at level q keeps the chance
   of any alarm at most q however many features there are.
2. A drifted distribution is `major` when its effect reaches its threshold (`covariate_effect_threshold`, 0.04,
   for KS distance and total variation; `prior_effect_threshold`, 0.1, for class shares) or its PSI reaches
   `covariate_threshold` (0.2) / `prior_threshold` (0.1); `minor` below all of them. Each result carries its
   `reason` (the effect, the threshold, the adjusted p-value, the rows tested). Neither threshold makes an alarm
   on its own: an effect or PSI over its mark without significance means the window is too small to tell.
3. `covariate_drift`: some feature drifted; `prior_drift`: the predictions or the labels drifted; `drifted`:
   either; `severity`: the highest of `none` / `minor` / `major`. The monitor retrains on `major`.
4. Data quality (`pipelines.drift.quality`) is reported by column with counts and never enters 1-3: cells that
   cannot be read are left out of their test, absent or unexpected columns are not tested.

Verified in tests/drift (seeded): false alarms at most 2% at windows of 30 to 50,000 rows with rare categories,
missing values and one unseen value (test_scenarios); a shift of the top 7% of a feature's values by 2 sd, a
0.3-sd mean shift and predictions moving 50% -> 58% acted on in at least 90% of trials at 5,000 rows; type
changes reported as data quality, never drift; no malformed window raises or warns. With 20 numeric and 4
categorical features at 5,000 rows (test_statistical_targets): a 0.25-sd shift of one feature in twenty found in
at least 95% of 100 trials, a class balance moving 50/50 -> 70/30 found as prior shift in 20 of 20.

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
