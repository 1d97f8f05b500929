"""Data validation: a reference profile from training data; bad data rejected with a report naming columns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.demo import demo_frame
from pipelines.validation import Expectations, learn_profile, validate

GOOD = "demo://classification?rows=2000&seed=7&missing=0.02"


@pytest.fixture(scope="module")
def profile() -> dict:
    return learn_profile(demo_frame(GOOD), "label")


def test_profile_is_json_and_describes_each_column(profile: dict) -> None:
    json.dumps(profile, allow_nan=False)
    assert profile["rows"] == 2000
    assert profile["columns"]["num_0"]["kind"] == "numeric" and profile["columns"]["num_0"]["min"] < 40
    assert profile["columns"]["cat_0"]["categories"] == ["a", "b", "c"]
    assert 0.0 < profile["columns"]["num_2"]["missing_rate"] < 0.05


def test_fresh_data_from_the_same_source_passes(profile: dict) -> None:
    report = validate(demo_frame("demo://classification?rows=2000&seed=8&missing=0.02"), target_column="label",
                      task="classification", profile=profile)
    assert report.passed, report.summary()


def test_bad_data_names_each_column_and_why(profile: dict) -> None:
    frame = demo_frame("demo://classification?rows=2000&seed=8").drop(columns=["num_1"])
    frame["num_3"] = frame["num_3"].astype(str).str.replace("5", "five")  # wrong dtype: text
    frame.loc[:99, "num_0"] = 1e6  # out of range
    frame.loc[:399, "num_4"] = np.nan  # 20% missing
    frame.loc[:199, "cat_1"] = "mars"  # unseen category
    frame["extra"] = 1.0
    report = validate(frame, target_column="label", task="classification", profile=profile)
    assert not report.passed
    failing = report.failing_columns
    assert set(failing) == {"num_0", "num_1", "num_3", "num_4", "cat_1"}
    assert "column is missing" in failing["num_1"][0]
    assert "expected numeric" in failing["num_3"][0]
    assert "outside the tolerated range" in failing["num_0"][0]
    assert "missing rate" in failing["num_4"][0]
    assert "mars" in failing["cat_1"][0]
    document = report.to_dict()
    json.dumps(document, allow_nan=False)
    assert {f["column"] for f in document["failures"]} == set(failing)
    assert [w["column"] for w in document["warnings"]] == ["extra"]  # new column: a warning, not a failure
    assert "num_1" in report.summary()


def test_target_and_row_count_rules_without_a_reference() -> None:
    frame = demo_frame("demo://classification?rows=50&seed=1")
    report = validate(frame.assign(label=0), target_column="label", task="classification")
    assert {c.check for c in report.failures} == {"rows", "classes"}
    report = validate(frame.drop(columns=["label"]), target_column="label", task="classification",
                      expectations=Expectations(min_rows=10))
    assert report.failing_columns == {"label": ["target column is missing"]}
    regression = pd.DataFrame({"x": range(200), "y": ["a"] * 200})
    assert "numeric target" in validate(regression, target_column="y", task="regression").failing_columns["y"][0]


def test_range_tolerance_is_a_share_of_the_span(profile: dict) -> None:
    ref = profile["columns"]["num_0"]
    frame = demo_frame("demo://classification?rows=2000&seed=8")
    span = ref["max"] - ref["min"]
    frame.loc[:9, "num_0"] = ref["max"] + 0.2 * span  # within the 25% tolerance
    assert validate(frame, target_column="label", task="classification", profile=profile).passed
    frame.loc[:9, "num_0"] = ref["max"] + 0.3 * span  # 0.5% of rows beyond it
    report = validate(frame, target_column="label", task="classification", profile=profile)
    assert list(report.failing_columns) == ["num_0"]
