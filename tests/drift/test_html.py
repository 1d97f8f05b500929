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


def test_html_report_gives_each_grade_its_reason_and_lists_data_quality_apart():
    rng = np.random.default_rng(22)
    profile = reference_profile(make_frame(rng, 10_000))
    window = make_frame(rng, 2_000, shift=0.3)
    window["x4"] = window["x4"].astype(object)
    window.loc[:4, "x4"] = "n/a"
    parsed = _Collector()
    parsed.feed(render_html(compare(profile, window.assign(extra=1))))
    text = " ".join(parsed.text)
    # The grade's reason per feature: effect, its threshold and the rows tested.
    assert "major: KS distance (largest share of rows moved across one value)" in text
    assert ">= 0.04" in text and "(2000 rows)" in text and "(1995 rows)" in text
    assert "Data quality: problems in 2 columns" in text and "unparseable" in text and "unexpected column" in text
    assert "window rows 2000 (at least 30 needed)" in text


def test_html_report_of_a_tiny_window_says_too_little_data():
    profile = reference_profile(make_frame(np.random.default_rng(23), 10_000))
    parsed = _Collector()
    parsed.feed(render_html(compare(profile, make_frame(np.random.default_rng(24), 5))))
    assert "too little data" in " ".join(parsed.text)
