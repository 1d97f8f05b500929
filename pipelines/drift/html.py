"""The drift report as one static, self-contained HTML page with inline SVG plots (no scripts, no requests)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from pipelines.drift.report import DistributionDrift, DriftReport

REFERENCE_COLOR = "#7f8fa6"
CURRENT_COLOR = "#e67e22"
#: Bars drawn per categorical plot (the largest shares); the table still lists every feature.
MAX_BARS = 25

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.major{background:#f8d7da}.minor{background:#fff3cd}
.plot{display:inline-block;margin:0 1em 1em 0;vertical-align:top}.legend span{margin-right:1em}
.verdict{font-size:1.2em;font-weight:bold}svg text{font-size:10px}
"""


def _number(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def _short(label: str) -> str:
    """An axis label: an interval "(a, b]" as "<= b", anything else cut to 14 characters."""
    if label.startswith("(") and label.endswith("]"):
        label = "<= " + label[1:-1].split(", ")[-1]
    return label if len(label) <= 14 else label[:13] + "…"


def bar_chart(labels: Sequence[str], reference: Sequence[float], current: Sequence[float], title: str) -> str:
    """Grouped bars of reference and current shares per bin, as an SVG element."""
    width, height, left, bottom = max(360, 32 * len(labels) + 80), 240, 40, 70
    top = max([*reference, *current, 1e-9])
    slot = (width - left - 40) / max(len(labels), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    parts.append(f'<text x="{left}" y="12">{escape(title)}</text>')
    for i, (label, ref, cur) in enumerate(zip(labels, reference, current, strict=True)):
        x = left + i * slot
        for j, (share, color) in enumerate(((ref, REFERENCE_COLOR), (cur, CURRENT_COLOR))):
            bar = (height - bottom - 20) * share / top
            parts.append(
                f'<rect x="{x + 2 + j * (slot - 4) / 2:.1f}" y="{height - bottom - bar:.1f}" '
                f'width="{(slot - 4) / 2:.1f}" height="{bar:.1f}" fill="{color}">'
                f"<title>{escape(label)}: {'reference' if j == 0 else 'current'} {share:.2%}</title></rect>"
            )
        parts.append(
            f'<text transform="translate({x + slot / 4:.1f},{height - bottom + 10}) rotate(40)">'
            f"{escape(_short(label))}</text>"
        )
    parts.append(f'<text x="2" y="{height - bottom}">0</text><text x="2" y="24">{top:.0%}</text></svg>')
    return "".join(parts)


def cdf_chart(x: Sequence[float], reference: Sequence[float], current: Sequence[float], title: str) -> str:
    """Reference and current CDFs on the reference grid, with the largest gap (the KS statistic) marked."""
    width, height, pad = 360, 220, 30
    if not x:
        return ""
    low, high = min(x), max(x)
    span = (high - low) or 1.0

    def point(value: float, share: float) -> str:
        return f"{pad + (width - 2 * pad) * (value - low) / span:.1f},{height - pad - (height - 2 * pad) * share:.1f}"

    gaps = [abs(r - c) for r, c in zip(reference, current, strict=True)]
    k = max(range(len(gaps)), key=gaps.__getitem__)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    parts.append(f'<text x="{pad}" y="12">{escape(title)}</text>')
    for series, color in ((reference, REFERENCE_COLOR), (current, CURRENT_COLOR)):
        points = " ".join(point(v, s) for v, s in zip(x, series, strict=True))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
    a, b = point(x[k], reference[k]).split(","), point(x[k], current[k]).split(",")
    parts.append(
        f'<line x1="{a[0]}" y1="{a[1]}" x2="{b[0]}" y2="{b[1]}" stroke="#c0392b" stroke-width="2">'
        f"<title>largest gap {gaps[k]:.4f} at {x[k]:.4g}</title></line>"
    )
    parts.append(
        f'<text x="{pad}" y="{height - 8}">{low:.4g}</text>'
        f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">{high:.4g}</text></svg>'
    )
    return "".join(parts)


def _plots(item: DistributionDrift) -> str:
    pairs = list(zip(item.bins, item.reference_shares, item.current_shares, strict=True))
    if item.kind == "categorical" and len(pairs) > MAX_BARS:
        pairs = sorted(pairs, key=lambda p: -max(p[1], p[2]))[:MAX_BARS]
    labels, reference, current = (list(column) for column in zip(*pairs, strict=True))
    title = "shares per reference decile" if item.kind == "numeric" else "shares per category"
    html = f'<div class="plot">{bar_chart(labels, reference, current, title)}</div>'
    if item.cdf and item.cdf["x"]:
        cdf = cdf_chart(item.cdf["x"], item.cdf["reference"], item.cdf["current"], f"CDF (KS D = {item.statistic:.4f})")
        html += f'<div class="plot">{cdf}</div>'
    return html


def _row(item: DistributionDrift) -> str:
    cells = [
        f'<a href="#plot-{escape(item.name)}">{escape(item.name)}</a>',
        item.kind,
        item.test,
        _number(item.p_adjusted, 3),
        f"{escape(item.effect_name.replace('_', ' '))} {_number(item.effect, 3)}",
        _number(item.effect_threshold, 3),
        _number(item.psi),
        _number(item.mean_shift_sd, 3),
        str(item.n_current) + (f" ({item.excluded} left out)" if item.excluded else ""),
        item.severity if item.drifted else "no",
        escape(item.reason),
    ]
    return f'<tr class="{item.severity}">' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _table(items: Sequence[DistributionDrift]) -> str:
    head = ["name", "kind", "test", "adjusted p", "effect", "effect threshold", "PSI", "mean shift (sd)",
            "rows tested", "drifted", "why"]
    rows = "".join(_row(item) for item in items)
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + f"</tr>{rows}</table>"


def _data_quality(report: DriftReport) -> str:
    """The data-quality problems by column (never drift), or nothing when there are none."""
    if not report.data_quality:
        return ""
    rows = "".join(
        f"<tr><td>{escape(p.column)}</td><td>{escape(p.problem)}</td><td>{p.count}</td><td>{escape(p.detail)}</td></tr>"
        for p in report.data_quality
    )
    return (
        f'<h2 class="major">Data quality: problems in {len(report.data_quality_columns)} columns</h2>'
        "<p>Reported apart from drift: cells that could not be read were left out of the tests, absent and "
        "unexpected columns were not tested.</p>"
        f"<table><tr><th>column</th><th>problem</th><th>cells</th><th>detail</th></tr>{rows}</table>"
    )


def _section(item: DistributionDrift) -> str:
    return f'<h3 id="plot-{escape(item.name)}">{escape(item.name)} - {escape(item.reason)}</h3>{_plots(item)}'


def render_html(report: DriftReport, *, top_n: int = 20, title: str = "Drift report") -> str:
    """The report page: verdict, quality, prior shift, per-feature table, plots of the `top_n` features.

    Plotted: the drifted features first, then the others, each group by decreasing effect, at most `top_n`.
    """
    ranked = sorted(report.features, key=lambda f: (not f.drifted, -f.effect))
    limits = report.monitoring
    verdict = "DRIFT" if report.drifted else "too little data" if report.too_little_data else "no drift"
    summary = (
        f'<p class="verdict">{verdict} (severity: {report.severity}); covariate drift: {report.covariate_drift}, '
        f"prior drift: {report.prior_drift}; data-quality problems: {len(report.data_quality_columns)} columns</p>"
        f"<p>window rows {report.n_current} (at least {limits.min_window_rows} needed), reference rows "
        f"{report.n_reference}, labelled rows {report.n_labelled}; drifted when the Benjamini-Hochberg adjusted "
        f"p-value is at most {limits.significance}; major when the effect reaches {limits.covariate_effect_threshold} "
        f"(KS distance, total variation) or {limits.prior_effect_threshold} (relative change of a class share), "
        f"or PSI reaches {limits.covariate_threshold} (features) or {limits.prior_threshold} (priors)</p>"
    )
    notes = "".join(f"<p><em>{escape(note)}</em></p>" for note in report.notes)
    quality = ""
    if report.quality or report.reference_quality:
        names = sorted({*report.quality, *report.reference_quality})
        rows = "".join(
            f"<tr><td>{escape(n)}</td><td>{_number(report.quality.get(n))}</td>"
            f"<td>{_number(report.reference_quality.get(n))}</td></tr>"
            for n in names
        )
        quality = f"<h2>Quality</h2><table><tr><th>metric</th><th>window</th><th>reference</th></tr>{rows}</table>"
    prior = ""
    if report.priors:
        prior = "<h2>Prior shift</h2>" + _table(report.priors) + "".join(_section(item) for item in report.priors)
    legend = (
        f'<p class="legend"><span style="color:{REFERENCE_COLOR}">&#9632; reference</span>'
        f'<span style="color:{CURRENT_COLOR}">&#9632; current window</span></p>'
    )
    shown = ranked[:top_n]
    plots = "".join(_section(item) for item in shown)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{summary}{notes}{_data_quality(report)}"
        f"{legend}{quality}{prior}"
        f"<h2>Features ({len(report.drifted_features)} of {len(report.features)} drifted)</h2>{_table(ranked)}"
        f"<h2>Distributions (top {len(shown)})</h2>{plots}</body></html>"
    )
