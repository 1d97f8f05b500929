"""Comparing a window of inference data with a reference profile: the `DriftReport` and `compare`."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control

from pipelines.catalog import DATA_QUALITY_METRIC
from pipelines.contract import MonitoringSettings
from pipelines.drift import numeric, stats
from pipelines.drift.profile import PROFILE_VERSION, RESERVED_COLUMNS, quality
from pipelines.drift.quality import (
    CategoricalColumn,
    ColumnProblem,
    NumericColumn,
    categorical_column,
    numeric_column,
    schema_problems,
)
from pipelines.sinks import Metric

#: Points of each CDF kept in a report for plotting (plus the point of the KS statistic).
CDF_PLOT_POINTS = 100

_SEVERITY_RANK = {"none": 0, "minor": 1, "major": 2}

#: What each effect size measures, for the reasons in reports.
EFFECTS = {
    "ks_distance": "KS distance (largest share of rows moved across one value)",
    "total_variation": "total variation (share of rows that changed category)",
    "class_share_change": "relative change of a class share",
}


@dataclass
class DistributionDrift:
    """How one distribution (a feature, the predictions or the labels) moved from the reference to the window.

    `test` is "ks" (two-sample Kolmogorov-Smirnov on the reference's quantile grid; numeric), "cressie-read" or
    "fisher" (categorical, see `stats.categorical_test`) or "none"; `statistic` its value, `p_value` the raw
    p-value and `p_adjusted` the Benjamini-Hochberg adjusted one over every test of the report. `effect` is the
    effect size named by `effect_name` (see `EFFECTS`), graded against `effect_threshold`; `psi` is over `bins`
    (reference deciles plus a missing bucket, or categories plus `other` and `missing`), graded against
    `psi_threshold`. `n_current` is the rows tested (the window's, or its labelled ones, less `excluded` cells
    that could not be read). `drifted`, `severity` and `reason` are the decision.
    """

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float
    psi: float
    effect: float
    effect_name: str
    n_reference: int
    n_current: int
    bins: list[str]
    reference_shares: list[float]
    current_shares: list[float]
    excluded: int = 0
    reference_mean: float | None = None
    current_mean: float | None = None
    mean_shift_sd: float | None = None
    cdf: dict[str, list[float]] | None = None
    p_adjusted: float = 1.0
    effect_threshold: float = 0.0
    psi_threshold: float = 0.0
    drifted: bool = False
    severity: str = "none"
    reason: str = ""


@dataclass
class DriftReport:
    """The drift report of one window against one reference profile (see `pipelines.drift` for the rule).

    `monitoring` holds the thresholds it was decided with (the spec's `monitoring` section). `too_little_data`:
    the window (`n_current` rows) is under `monitoring.min_window_rows`, so nothing was tested. `data_quality`
    lists the window's data-quality problems by column (never drift).
    """

    task: str
    n_reference: int
    n_current: int
    n_labelled: int
    features: list[DistributionDrift]
    prediction: DistributionDrift | None
    label: DistributionDrift | None
    quality: dict[str, float]
    reference_quality: dict[str, float]
    monitoring: MonitoringSettings
    data_quality: list[ColumnProblem] = field(default_factory=list)
    too_little_data: bool = False
    covariate_drift: bool = False
    prior_drift: bool = False
    drifted: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        """Names of the features that drifted, largest effect first."""
        return [item.name for item in sorted(self.features, key=lambda f: -f.effect) if item.drifted]

    @property
    def priors(self) -> list[DistributionDrift]:
        """The prior-shift results present: predictions, then labels."""
        return [item for item in (self.prediction, self.label) if item is not None]

    @property
    def severity(self) -> str:
        """'none', 'minor' (drift under every threshold) or 'major' (some drift at or over a threshold)."""
        levels = [item.severity for item in [*self.features, *self.priors]]
        return max(levels, key=_SEVERITY_RANK.__getitem__, default="none")

    @property
    def data_quality_columns(self) -> list[str]:
        """Columns with data-quality problems, in report order, once each."""
        return list(dict.fromkeys(problem.column for problem in self.data_quality))

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-serializable data."""
        result = asdict(self)
        result["monitoring"] = self.monitoring.model_dump(mode="json")
        result["drifted_features"] = self.drifted_features
        result["severity"] = self.severity
        result["data_quality_columns"] = self.data_quality_columns
        return result

    def metrics(self) -> list[Metric]:
        """Flat (name, labels, value) gauges for sinks: per feature, per prior, data quality, quality, summary."""
        out: list[Metric] = []
        for item in self.features:
            labels = {"feature": item.name, "kind": item.kind}
            out += [
                Metric("shipyard_drift_feature_psi", labels, item.psi),
                Metric("shipyard_drift_feature_effect", labels, item.effect),
                Metric("shipyard_drift_feature_statistic", {**labels, "test": item.test}, item.statistic),
                Metric("shipyard_drift_feature_p_value_adjusted", labels, item.p_adjusted),
                Metric("shipyard_drift_feature_drifted", labels, float(item.drifted)),
            ]
        for item in self.priors:
            labels = {"distribution": item.name}
            out += [
                Metric("shipyard_drift_prior_psi", labels, item.psi),
                Metric("shipyard_drift_prior_effect", labels, item.effect),
                Metric("shipyard_drift_prior_p_value_adjusted", labels, item.p_adjusted),
                Metric("shipyard_drift_prior_drifted", labels, float(item.drifted)),
            ]
        out += [
            Metric("shipyard_data_quality_cells", {"column": problem.column, "problem": problem.problem},
                   float(problem.count))
            for problem in self.data_quality
        ]
        out += [Metric("shipyard_model_quality", {"metric": name}, value) for name, value in self.quality.items()]
        out += [
            Metric("shipyard_drift_covariate", {}, float(self.covariate_drift)),
            Metric("shipyard_drift_prior", {}, float(self.prior_drift)),
            Metric("shipyard_drift_detected", {}, float(self.drifted)),
            Metric("shipyard_drift_severity", {}, float(_SEVERITY_RANK[self.severity])),
            Metric("shipyard_drift_features_drifted", {}, float(len(self.drifted_features))),
            Metric("shipyard_drift_too_little_data", {}, float(self.too_little_data)),
            Metric(DATA_QUALITY_METRIC, {}, float(len(self.data_quality_columns))),
            Metric("shipyard_drift_window_rows", {}, float(self.n_current)),
            Metric("shipyard_drift_labelled_rows", {}, float(self.n_labelled)),
        ]
        return out


def _edge_label(value: float) -> str:
    return f"{value:.4g}"


def _bin_labels(edges: list[float]) -> list[str]:
    """Labels of the PSI bins cut at `edges`, then of the missing bucket."""
    if not edges:
        return ["all", "missing"]
    labels = [f"<= {_edge_label(edges[0])}"]
    labels += [f"({_edge_label(low)}, {_edge_label(high)}]" for low, high in itertools.pairwise(edges)]
    return [*labels, f"> {_edge_label(edges[-1])}", "missing"]


def _cdf_points(grid: np.ndarray, reference: np.ndarray, current: np.ndarray) -> dict[str, list[float]]:
    """About CDF_PLOT_POINTS points of both CDFs on the grid, always including the largest gap."""
    size = len(grid)
    if size == 0:
        return {"x": [], "reference": [], "current": []}
    widest = np.argmax(np.abs(reference[:size] - current[:size]))
    keep = np.unique(np.append(np.arange(0, size, max(1, size // CDF_PLOT_POINTS)), [size - 1, widest]))
    return {"x": grid[keep].tolist(), "reference": reference[keep].tolist(), "current": current[keep].tolist()}


def _optional(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def numeric_drift(profiles: dict[str, dict[str, Any]], columns: dict[str, NumericColumn]) -> list[DistributionDrift]:
    """KS, PSI and effect of the numeric distributions named by `profiles`, read as `columns`; unadjusted."""
    if not profiles:
        return []
    references = numeric.NumericReferences.from_profiles(profiles)
    read = [columns[name] for name in references.names]
    tested = np.array([len(column.values) - column.excluded for column in read], dtype=np.int64)
    window = numeric.window_counts(references, [column.values for column in read], tested)
    measured = numeric.statistics(references, window)
    results = []
    for j, name in enumerate(references.names):
        edges = references.edges[j]
        kept = slice(references.edge_columns.shape[1] - len(edges), None)  # drop the padding bins
        results.append(
            DistributionDrift(
                name=name,
                kind="numeric",
                test="ks",
                statistic=float(measured.ks[j]),
                p_value=float(measured.p_value[j]),
                psi=float(measured.psi[j]),
                effect=float(measured.ks[j]),
                effect_name="ks_distance",
                n_reference=int(references.n[j]),
                n_current=int(tested[j]),
                excluded=read[j].excluded,
                bins=_bin_labels(edges),
                reference_shares=measured.reference_shares[j, kept].tolist(),
                current_shares=measured.current_shares[j, kept].tolist(),
                reference_mean=_optional(references.mean[j]),
                current_mean=_optional(window.mean[j]),
                mean_shift_sd=_optional(measured.mean_shift_sd[j]),
                cdf=_cdf_points(references.grids[j], measured.reference_cdf[j], measured.current_cdf[j]),
            )
        )
    return results


def _class_share_change(reference: np.ndarray, current: np.ndarray) -> float:
    """Largest relative change of a bucket's share, over the buckets the reference holds."""
    held = reference > 0
    return float(np.max(np.abs(current[held] - reference[held]) / reference[held], initial=0.0))


def categorical_drift(name: str, profile: dict[str, Any], column: CategoricalColumn, *, prior: bool = False
                      ) -> DistributionDrift:
    """Test, PSI and effect of one categorical distribution read as `column`, unadjusted.

    The effect is the total variation distance (half the summed share differences) for a feature, the largest
    relative change of a class share for a prior (`prior`: the predictions or the labels of a classifier).
    """
    reference_counts = np.asarray(profile["counts"], dtype=np.int64)
    test, statistic, p_value = stats.categorical_test(reference_counts, column.counts)
    reference, current = stats.shares(reference_counts), stats.shares(column.counts)
    tested = int(column.counts.sum())
    if prior:
        effect, effect_name = _class_share_change(reference, current), "class_share_change"
    else:
        effect, effect_name = 0.5 * float(np.abs(current - reference).sum()), "total_variation"
    return DistributionDrift(
        name=name,
        kind="categorical",
        test=test,
        statistic=statistic,
        p_value=p_value,
        psi=stats.psi(reference_counts, column.counts),
        effect=effect if tested else 0.0,
        effect_name=effect_name,
        n_reference=int(profile["n"]),
        n_current=tested,
        excluded=column.excluded,
        bins=[*(str(value) for value in profile["categories"]), "other", "missing"],
        reference_shares=reference.tolist(),
        current_shares=current.tolist(),
    )


Column = NumericColumn | CategoricalColumn


def read_column(name: str, profile: dict[str, Any], series: pd.Series) -> tuple[Column | None, list[ColumnProblem]]:
    """A window column read as its reference distribution's kind, and its problems; None if it cannot be read."""
    try:
        if profile["kind"] == "numeric":
            column: Column = numeric_column(name, series, text_in_reference=bool(profile.get("text")))
        else:
            column = categorical_column(name, profile, series)
    except Exception as error:  # any column that cannot be read is a data-quality problem, never a failed pass
        return None, [ColumnProblem(name, "unreadable", len(series), f"{type(error).__name__}: {error}")]
    return column, column.problems


def _measure(profiles: dict[str, dict[str, Any]], columns: dict[str, Column], *, prior: bool = False
             ) -> list[DistributionDrift]:
    """Unadjusted drift of every distribution in `profiles` that was read, in profile order."""
    categorical = [name for name, p in profiles.items() if p["kind"] == "categorical" and name in columns]
    measured = {
        item.name: item
        for item in numeric.parallel_map(
            lambda name: categorical_drift(name, profiles[name], columns[name], prior=prior),
            categorical,
            sum(len(columns[name].codes) for name in categorical),
        )
    }
    numeric_profiles = {name: p for name, p in profiles.items() if p["kind"] == "numeric" and name in columns}
    measured.update((item.name, item) for item in numeric_drift(numeric_profiles, columns))
    return [measured[name] for name in profiles if name in measured]


def feature_drift(
    reference: dict[str, Any], current: pd.DataFrame, *, kind: str | None = None
) -> tuple[list[DistributionDrift], list[ColumnProblem]]:
    """Unadjusted drift of every profiled feature (or only those of `kind`) present in the window, in profile
    order, and the data-quality problems met reading them."""
    profiles = {name: p for name, p in reference["features"].items() if kind is None or p["kind"] == kind}
    columns: dict[str, Column] = {}
    problems: list[ColumnProblem] = []
    for name, profile in profiles.items():
        if name in current.columns:
            column, found = read_column(name, profile, current[name])
            problems += found
            if column is not None:
                columns[name] = column
    return _measure(profiles, columns), problems


def _effect_reason(item: DistributionDrift) -> tuple[bool, str]:
    """Whether a drifted distribution's effect or PSI reaches its threshold, and the comparison in words."""
    effect_major = item.effect >= item.effect_threshold
    psi_major = item.psi >= item.psi_threshold
    words = (
        f"{EFFECTS[item.effect_name]} {item.effect:.3g} {'>=' if effect_major else '<'} {item.effect_threshold:g}, "
        f"PSI {item.psi:.3g} {'>=' if psi_major else '<'} {item.psi_threshold:g}"
    )
    return effect_major or psi_major, words


def grade(item: DistributionDrift, *, significance: float, effect_threshold: float, psi_threshold: float) -> None:
    """Set a distribution's decision: drifted when significant, `major` when its effect or PSI reaches its
    threshold, `minor` below both; the reason says which, with the window size."""
    item.effect_threshold, item.psi_threshold = effect_threshold, psi_threshold
    item.drifted = bool(item.p_adjusted <= significance)
    evidence = f"adjusted p {item.p_adjusted:.3g} {'<=' if item.drifted else '>'} {significance:g}"
    if not item.drifted:
        item.severity, item.reason = "none", f"no drift: {evidence} ({item.n_current} rows)"
        return
    major, words = _effect_reason(item)
    item.severity = "major" if major else "minor"
    item.reason = f"{item.severity}: {words}; {evidence} ({item.n_current} rows)"


def _check_profile(reference: dict[str, Any]) -> None:
    version = reference.get("version") if isinstance(reference, dict) else None
    if version != PROFILE_VERSION:
        raise ValueError(f"reference profile version {version!r} is not {PROFILE_VERSION}; rebuild the profile")


def _labelled_quality(task: str, prediction: Column, label: Column, known: np.ndarray) -> dict[str, float]:
    """Quality of the predictions against the labels (read on the `known` rows only) where both could be read."""
    if isinstance(label, NumericColumn) and isinstance(prediction, NumericColumn):
        predicted, actual = prediction.values[known], label.values
        both = ~np.isnan(predicted) & ~np.isnan(actual)
    elif isinstance(label, CategoricalColumn) and isinstance(prediction, CategoricalColumn):
        predicted, actual = prediction.values()[known], label.values()
        both = pd.notna(predicted) & pd.notna(actual)
    else:
        return {}
    return quality(task, predicted[both], actual[both])


def compare(
    reference: dict[str, Any],
    current: pd.DataFrame,
    *,
    prediction_column: str = "prediction",
    label_column: str | None = None,
    monitoring: MonitoringSettings | None = None,
) -> DriftReport:
    """Compare a window of inference data (features, predictions, and labels when known) with a reference profile.

    Never raises on the window's contents: absent, unexpected and unreadable columns and cells are data-quality
    problems in the report. The prediction distribution is compared when the profile has one and the window has
    `prediction_column`; the label distribution and the quality when `label_column` is given and the window has
    at least `min_window_rows` labelled rows. See `pipelines.drift` for the decision rule.
    """
    _check_profile(reference)
    limits = monitoring or MonitoringSettings()
    task = reference["task"]
    known_columns = {*RESERVED_COLUMNS, prediction_column, label_column, reference.get("target_column")}
    problems = schema_problems(reference, current, known=known_columns)
    notes: list[str] = []
    rows = len(current)
    too_little = rows < limits.min_window_rows
    if too_little:
        notes.append(f"too little data: {rows} rows in the window, under the {limits.min_window_rows} needed; "
                     "nothing was tested")
    features, found = feature_drift(reference, current)
    problems += found
    prediction_read = label_read = None
    priors: dict[str, DistributionDrift] = {}
    if reference.get("prediction") and prediction_column in current.columns:
        prediction_read, found = read_column("prediction", reference["prediction"], current[prediction_column])
        problems += found
        if prediction_read is not None:
            priors.update((item.name, item) for item in _measure({"prediction": reference["prediction"]},
                                                                 {"prediction": prediction_read}, prior=True))
    elif reference.get("prediction"):
        problems.append(ColumnProblem(prediction_column, "missing column", rows,
                                      "no predictions in the window: prediction distribution not compared"))
    measured: dict[str, float] = {}
    n_labelled = 0
    if label_column is not None and label_column in current.columns:
        known = current[label_column].notna().to_numpy()
        n_labelled = int(known.sum())
        if reference.get("label") and n_labelled:
            label_read, found = read_column("label", reference["label"], current[label_column][known])
            problems += found
        if label_read is not None and n_labelled >= limits.min_window_rows:
            priors.update((item.name, item) for item in _measure({"label": reference["label"]},
                                                                 {"label": label_read}, prior=True))
            if prediction_read is not None:
                measured = _labelled_quality(task, prediction_read, label_read, known)
        elif 0 < n_labelled < limits.min_window_rows:
            notes.append(f"too few labels: {n_labelled} labelled rows, under the {limits.min_window_rows} needed; "
                         "labels and quality not compared")
    elif label_column is not None:
        notes.append(f"no {label_column!r} column in the window: labels and quality not compared")
    if too_little:
        features, priors = [], {}
    prediction, label = priors.get("prediction"), priors.get("label")
    tested = [*features, *priors.values()]
    if tested:
        adjusted = false_discovery_control(np.array([item.p_value for item in tested]))
        for item, value in zip(tested, adjusted, strict=True):
            item.p_adjusted = float(value)
    for item in features:
        grade(item, significance=limits.significance, effect_threshold=limits.covariate_effect_threshold,
              psi_threshold=limits.covariate_threshold)
    for item in priors.values():
        class_shares = item.effect_name == "class_share_change"
        grade(item, significance=limits.significance, psi_threshold=limits.prior_threshold,
              effect_threshold=limits.prior_effect_threshold if class_shares else limits.covariate_effect_threshold)
    covariate = any(item.drifted for item in features)
    prior = any(item.drifted for item in priors.values())
    return DriftReport(
        task=task,
        n_reference=int(reference["n_rows"]),
        n_current=rows,
        n_labelled=n_labelled,
        features=features,
        prediction=prediction,
        label=label,
        quality=measured,
        reference_quality=dict(reference.get("quality") or {}),
        monitoring=limits,
        data_quality=problems,
        too_little_data=too_little,
        covariate_drift=covariate,
        prior_drift=prior,
        drifted=covariate or prior,
        notes=notes,
    )
