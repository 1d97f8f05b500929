"""Comparing a window of inference data with a reference profile: the `DriftReport` and `compare`."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.drift import numeric, stats
from pipelines.drift.profile import PROFILE_VERSION, plain_value, quality, value_counts
from pipelines.sinks import Metric

#: Points of each CDF kept in a report for plotting (plus the point of the KS statistic).
CDF_PLOT_POINTS = 100

_SEVERITY_RANK = {"none": 0, "minor": 1, "major": 2}


@dataclass
class DistributionDrift:
    """How one distribution (a feature, the predictions or the labels) moved from the reference to the window.

    `test` is "ks" (two-sample Kolmogorov-Smirnov on the reference's quantile grid; numeric) or "chi2" (Pearson
    chi-square homogeneity; categorical), `statistic` its value (the KS statistic D, or chi-square), `p_value`
    the raw p-value and `p_adjusted` the Benjamini-Hochberg adjusted one over every test of the report.
    `psi` is over `bins` (reference deciles plus a missing bucket, or categories plus `other` and `missing`).
    `drifted` and `severity` are the decision (see `pipelines.drift`).
    """

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float
    psi: float
    n_reference: int
    n_current: int
    bins: list[str]
    reference_shares: list[float]
    current_shares: list[float]
    reference_mean: float | None = None
    current_mean: float | None = None
    mean_shift_sd: float | None = None
    cdf: dict[str, list[float]] | None = None
    p_adjusted: float = 1.0
    drifted: bool = False
    severity: str = "none"


@dataclass
class DriftReport:
    """The drift report of one window against one reference profile (see `pipelines.drift` for the rule)."""

    task: str
    n_reference: int
    n_current: int
    n_labelled: int
    features: list[DistributionDrift]
    prediction: DistributionDrift | None
    label: DistributionDrift | None
    quality: dict[str, float]
    reference_quality: dict[str, float]
    covariate_threshold: float
    prior_threshold: float
    significance: float
    covariate_drift: bool = False
    prior_drift: bool = False
    drifted: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        """Names of the features that drifted, most shifted (by PSI) first."""
        return [item.name for item in sorted(self.features, key=lambda f: -f.psi) if item.drifted]

    @property
    def priors(self) -> list[DistributionDrift]:
        """The prior-shift results present: predictions, then labels."""
        return [item for item in (self.prediction, self.label) if item is not None]

    @property
    def severity(self) -> str:
        """'none', 'minor' (drift below the PSI thresholds) or 'major' (some drift at or above its threshold)."""
        levels = [item.severity for item in [*self.features, *self.priors]]
        return max(levels, key=_SEVERITY_RANK.__getitem__, default="none")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-serializable data."""
        result = asdict(self)
        result["drifted_features"] = self.drifted_features
        result["severity"] = self.severity
        return result

    def metrics(self) -> list[Metric]:
        """Flat (name, labels, value) gauges for sinks: per feature, per prior distribution, quality, summary."""
        out: list[Metric] = []
        for item in self.features:
            labels = {"feature": item.name, "kind": item.kind}
            out += [
                Metric("shipyard_drift_feature_psi", labels, item.psi),
                Metric("shipyard_drift_feature_statistic", {**labels, "test": item.test}, item.statistic),
                Metric("shipyard_drift_feature_p_value_adjusted", labels, item.p_adjusted),
                Metric("shipyard_drift_feature_drifted", labels, float(item.drifted)),
            ]
        for item in self.priors:
            labels = {"distribution": item.name}
            out += [
                Metric("shipyard_drift_prior_psi", labels, item.psi),
                Metric("shipyard_drift_prior_p_value_adjusted", labels, item.p_adjusted),
                Metric("shipyard_drift_prior_drifted", labels, float(item.drifted)),
            ]
        out += [Metric("shipyard_model_quality", {"metric": name}, value) for name, value in self.quality.items()]
        out += [
            Metric("shipyard_drift_covariate", {}, float(self.covariate_drift)),
            Metric("shipyard_drift_prior", {}, float(self.prior_drift)),
            Metric("shipyard_drift_detected", {}, float(self.drifted)),
            Metric("shipyard_drift_severity", {}, float(_SEVERITY_RANK[self.severity])),
            Metric("shipyard_drift_features_drifted", {}, float(len(self.drifted_features))),
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


def numeric_drift(profiles: dict[str, dict[str, Any]], current: pd.DataFrame) -> list[DistributionDrift]:
    """KS and PSI of the window's columns named by `profiles` (numeric distributions), unadjusted, in order."""
    if not profiles:
        return []
    references = numeric.NumericReferences.from_profiles(profiles)
    window = numeric.window_counts(references, current)
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
                n_reference=int(references.n[j]),
                n_current=window.n,
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


def categorical_counts(profile: dict[str, Any], series: pd.Series) -> np.ndarray:
    """Counts of a window column over the reference categories, then `other`, then missing."""
    per_value, uniques, missing = value_counts(series)
    position = {value: index for index, value in enumerate(profile["categories"])}
    other = len(position)
    target = np.fromiter((position.get(plain_value(value), other) for value in uniques), np.intp, len(uniques))
    counts = np.bincount(target, weights=per_value, minlength=other + 2).astype(np.int64)
    counts[other + 1] = missing
    return counts


def categorical_drift(name: str, profile: dict[str, Any], series: pd.Series) -> DistributionDrift:
    """Chi-square and PSI of one categorical column of the window against its reference distribution."""
    reference_counts = np.asarray(profile["counts"], dtype=np.int64)
    current_counts = categorical_counts(profile, series)
    statistic, p_value = stats.chi2_homogeneity(reference_counts, current_counts)
    return DistributionDrift(
        name=name,
        kind="categorical",
        test="chi2",
        statistic=statistic,
        p_value=p_value,
        psi=stats.psi(reference_counts, current_counts),
        n_reference=int(profile["n"]),
        n_current=len(series),
        bins=[*(str(value) for value in profile["categories"]), "other", "missing"],
        reference_shares=stats.shares(reference_counts).tolist(),
        current_shares=stats.shares(current_counts).tolist(),
    )


def distribution_drift(name: str, profile: dict[str, Any], series: pd.Series) -> DistributionDrift:
    """Drift of one column (predictions, labels) against its reference distribution, numeric or categorical."""
    if profile["kind"] == "numeric":
        return numeric_drift({name: profile}, pd.DataFrame({name: series}, copy=False))[0]
    return categorical_drift(name, profile, series)


def feature_drift(
    reference: dict[str, Any], current: pd.DataFrame, *, kind: str | None = None
) -> list[DistributionDrift]:
    """Unadjusted drift of every profiled feature (or only those of `kind`) of the window, in profile order."""
    profiles = {name: p for name, p in reference["features"].items() if kind is None or p["kind"] == kind}
    absent = [name for name in profiles if name not in current.columns]
    if absent:
        raise ValueError(f"the window lacks feature columns of the reference profile: {absent}")
    categorical = [name for name, p in profiles.items() if p["kind"] == "categorical"]
    measured = {
        item.name: item
        for item in numeric.parallel_map(
            lambda name: categorical_drift(name, profiles[name], current[name]),
            categorical,
            len(current) * len(categorical),
        )
    }
    numeric_profiles = {name: p for name, p in profiles.items() if p["kind"] == "numeric"}
    measured.update((item.name, item) for item in numeric_drift(numeric_profiles, current))
    return [measured[name] for name in profiles]


def _decide(results: list[DistributionDrift], threshold: float, significance: float) -> None:
    """Set each result's decision from its adjusted p-value and its PSI (see `pipelines.drift`)."""
    for item in results:
        item.drifted = bool(item.p_adjusted <= significance)
        item.severity = ("major" if item.psi >= threshold else "minor") if item.drifted else "none"


def _check_profile(reference: dict[str, Any]) -> None:
    version = reference.get("version") if isinstance(reference, dict) else None
    if version != PROFILE_VERSION:
        raise ValueError(f"reference profile version {version!r} is not {PROFILE_VERSION}; rebuild the profile")


def compare(
    reference: dict[str, Any],
    current: pd.DataFrame,
    *,
    prediction_column: str = "prediction",
    label_column: str | None = None,
    covariate_threshold: float = 0.2,
    prior_threshold: float = 0.1,
    significance: float = 0.01,
) -> DriftReport:
    """Compare a window of inference data (features, predictions, and labels when known) with a reference profile.

    Every profiled feature must be a column of `current`. The prediction distribution is compared when the
    profile has one and the window has `prediction_column`; the label distribution and the quality when
    `label_column` is given and the window has labelled rows. See `pipelines.drift` for the decision rule.
    """
    _check_profile(reference)
    task = reference["task"]
    features = feature_drift(reference, current)
    notes: list[str] = []
    prediction = label = None
    if reference.get("prediction") and prediction_column in current.columns:
        prediction = distribution_drift("prediction", reference["prediction"], current[prediction_column])
    elif reference.get("prediction"):
        notes.append(f"no {prediction_column!r} column in the window: prediction distribution not compared")
    measured: dict[str, float] = {}
    n_labelled = 0
    if label_column is not None and label_column in current.columns:
        known = current[label_column].notna().to_numpy()
        n_labelled = int(known.sum())
        if n_labelled and reference.get("label"):
            label = distribution_drift("label", reference["label"], current[label_column][known])
        if n_labelled and prediction_column in current.columns:
            known = known & current[prediction_column].notna().to_numpy()
            measured = quality(
                task, current[prediction_column].to_numpy()[known], current[label_column].to_numpy()[known]
            )
    elif label_column is not None:
        notes.append(f"no {label_column!r} column in the window: labels and quality not compared")
    priors = [item for item in (prediction, label) if item is not None]
    adjusted = stats.benjamini_hochberg(np.array([item.p_value for item in [*features, *priors]]))
    for item, value in zip([*features, *priors], adjusted, strict=True):
        item.p_adjusted = float(value)
    _decide(features, covariate_threshold, significance)
    _decide(priors, prior_threshold, significance)
    covariate = any(item.drifted for item in features)
    prior = any(item.drifted for item in priors)
    if len(current) == 0:
        notes.append("the window is empty: nothing was tested")
    return DriftReport(
        task=task,
        n_reference=int(reference["n_rows"]),
        n_current=len(current),
        n_labelled=n_labelled,
        features=features,
        prediction=prediction,
        label=label,
        quality=measured,
        reference_quality=dict(reference.get("quality") or {}),
        covariate_threshold=covariate_threshold,
        prior_threshold=prior_threshold,
        significance=significance,
        covariate_drift=covariate,
        prior_drift=prior,
        drifted=covariate or prior,
        notes=notes,
    )
