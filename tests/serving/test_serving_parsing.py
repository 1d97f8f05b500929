"""Payload parsing and signature enforcement: pure functions, no server."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.serving.payload import PayloadError, media_type, parse_body, parse_json
from pipelines.serving.schema import Column, InputSchema, coerce, enforce

SCHEMA = InputSchema((Column("x", "double"), Column("n", "long"), Column("c", "string"),
                      Column("flag", "boolean", required=False)))


def test_every_json_format_gives_the_same_columns():
    expected = {"x": [1.5, 2.0], "n": [1, 2], "c": ["a", "b"]}
    bodies = [
        b'{"dataframe_split": {"columns": ["x", "n", "c"], "data": [[1.5, 1, "a"], [2.0, 2, "b"]]}}',
        b'{"dataframe_records": [{"x": 1.5, "n": 1, "c": "a"}, {"x": 2.0, "n": 2, "c": "b"}]}',
        b'{"instances": [{"x": 1.5, "n": 1, "c": "a"}, {"x": 2.0, "n": 2, "c": "b"}]}',
        b'{"inputs": {"x": [1.5, 2.0], "n": [1, 2], "c": ["a", "b"]}}',
        b'{"inputs": [{"x": 1.5, "n": 1, "c": "a"}, {"x": 2.0, "n": 2, "c": "b"}], "params": {}}',
    ]
    for body in bodies:
        parsed = parse_json(body)
        assert parsed.rows == 2, body
        assert {k: list(v) for k, v in parsed.data.items()} == expected, body


def test_csv_and_content_types():
    parsed = parse_body(b"x,n,c\n1.5,1,a\n2.0,2,b\n", "text/csv; charset=utf-8")
    assert parsed.rows == 2 and parsed.data["n"].tolist() == [1, 2]
    assert media_type(None) == "application/json"
    with pytest.raises(PayloadError) as err:
        parse_body(b"x", "application/xml")
    assert err.value.status == 415 and "application/xml" in err.value.message
    with pytest.raises(PayloadError) as err:
        media_type("application/json; charset=latin-1")
    assert err.value.status == 415


@pytest.mark.parametrize(("body", "named"), [
    (b"{not json", "malformed JSON"),
    (b"", "empty request body"),
    (b"[1, 2]", "got a JSON array"),
    (b'{"dataframe_split": {}, "extra": 1}', "'extra'"),
    (b'{"rows": []}', "'rows'"),
    (b'{"dataframe_split": {"data": [[1]], "columns": ["a"]}, "inputs": {}}', "got dataframe_split, inputs"),
    (b'{"dataframe_split": {"data": [[1, 2]], "columns": ["a"]}}', "dataframe_split.data[0] has 2 values"),
    (b'{"dataframe_split": {"data": [[1]]}}', "dataframe_split.columns"),
    (b'{"dataframe_split": {"data": [[1]], "columns": ["a"], "orient": 1}}', "'orient'"),
    (b'{"dataframe_records": {"a": 1}}', "dataframe_records must be a list"),
    (b'{"instances": [[1, 2]]}', "instances[0] must be an object"),
    (b'{"inputs": {"a": [1, 2], "b": [1]}}', "same number of values"),
    (b'{"inputs": 3}', "inputs must be"),
    (b'{"inputs": {"a": 1}, "params": 2}', "'params' must be a JSON object"),
])
def test_bad_payloads_name_the_problem(body, named):
    with pytest.raises(PayloadError) as err:
        parse_json(body)
    assert err.value.status == 400
    assert named in err.value.message


def test_enforce_types_order_and_extra_columns():
    parsed = parse_json(b'{"dataframe_records": [{"c": "a", "n": 3.0, "x": 1, "junk": 9}, '
                        b'{"c": null, "n": 4, "x": null}]}')
    typed = enforce(parsed, SCHEMA)
    assert list(typed) == ["x", "n", "c"]
    assert typed["x"].dtype == np.float64 and np.isnan(typed["x"][1])
    assert typed["n"].dtype == np.int64 and typed["n"].tolist() == [3, 4]
    assert typed["c"] == ["a", None]


@pytest.mark.parametrize(("records", "named"), [
    ([{"x": 1.0, "c": "a"}], "missing column(s) ['n']"),
    ([{"x": "abc", "n": 1, "c": "a"}], "column 'x': expected numbers (double), got 'abc'"),
    ([{"x": True, "n": 1, "c": "a"}], "column 'x': expected numbers (double), got True"),
    ([{"x": 1.0, "n": 2.5, "c": "a"}], "column 'n': expected integers, got 2.5"),
    ([{"x": 1.0, "n": None, "c": "a"}], "column 'n': missing value (null) in a long column"),
    ([{"x": 1.0, "n": 2**70, "c": "a"}], "column 'n': value out of range for long"),
    ([{"x": 1.0, "n": 1, "c": 5}], "column 'c': expected text, got 5"),
    ([{"x": 1.0, "n": 1, "c": "a", "flag": "yes"}], "column 'flag': expected true/false (boolean), got 'yes'"),
    ([{"x": [1.0], "n": 1, "c": "a"}], "column 'x'"),
])
def test_schema_violations_name_the_column(records, named):
    import json

    with pytest.raises(PayloadError) as err:
        enforce(parse_json(json.dumps({"dataframe_records": records}).encode()), SCHEMA)
    assert named in err.value.message


def test_coerce_keeps_safe_conversions_only():
    assert coerce(Column("i", "integer"), [1, 2]).dtype == np.int32
    assert coerce(Column("f", "float"), [1, 2.5]).dtype == np.float32
    assert coerce(Column("b", "boolean"), [True, False]).tolist() == [True, False]
    with pytest.raises(PayloadError, match="expected true/false"):
        coerce(Column("b", "boolean"), [1, 0])
