"""The static HTML report: self-contained, every drifted feature tabled and plotted."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser

import numpy as np
import pytest

from pipelines.drift import compare, render_html

from .synthetic import make_frame, reference_profile


class _Collector(HTMLParser):
    """Tags, ids and text of a page; fails on nothing but records what a browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.ids += [value for key, value in attrs if key == "id"]

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report():
    rng = np.random.default_rng(21)
    profile = reference_profile(make_frame(rng, 10_000))
    window = make_frame(rng, 5_000, shift=0.5, positive_share=0.7)
    window["x9"] *= 2.0
    window["c1"] = window["c1"].cat.rename_categories({"c1_0": "c1_new"})
    return compare(profile, window, label_column="label")


def test_html_report_plots_every_drifted_feature_and_loads_nothing(report):
    page = render_html(report, title="Drift report: churn v3")
    parsed = _Collector()
    parsed.feed(page)
    assert set(report.drifted_features) == {"x0", "x9", "c1"}
    for name in report.drifted_features:
        assert f"plot-{name}" in parsed.ids
    assert {"plot-prediction", "plot-label"} <= set(parsed.ids)
    assert parsed.tags.count("svg") >= 2 * 20 and "polyline" in parsed.tags
    assert "script" not in parsed.tags and "img" not in parsed.tags and "link" not in parsed.tags
    assert "Drift report: churn v3" in "".join(parsed.text)


def test_every_plot_is_well_formed_svg_with_both_distributions(report):
    plots = re.findall(r"<svg .*?</svg>", render_html(report), flags=re.DOTALL)
    assert plots
    for plot in plots:
        svg = ElementTree.fromstring(plot)
        shapes = [element.tag.split("}")[-1] for element in svg.iter()]
        assert shapes.count("rect") >= 2 or shapes.count("polyline") == 2


def test_html_report_plots_at_most_top_n_features_drifted_first(report):
    parsed = _Collector()
    parsed.feed(render_html(report, top_n=2))
    plotted = [identifier.removeprefix("plot-") for identifier in parsed.ids if identifier.startswith("plot-")]
    features = [name for name in plotted if name not in ("prediction", "label")]
    assert len(features) == 2 and set(features) <= set(report.drifted_features)


def test_html_report_escapes_names(report):
    odd = report.features[0]
    original = odd.name
    odd.name = '<script>"x"&'
    try:
        page = render_html(report)
    finally:
        odd.name = original
    assert "<script>" not in page and "&lt;script&gt;" in page
