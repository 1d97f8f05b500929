"""Parsing MLflow scoring-protocol request bodies into columns. Pure: bytes in, columns or a problem out.

Accepted (the protocol of `mlflow models serve`):
- `application/json` with exactly one of `dataframe_split` (`{"columns": [...], "data": [[...], ...]}`),
  `dataframe_records` (`[{"col": value, ...}, ...]`), `instances` (records, or columns) or `inputs`
  (columns `{"col": [...]}`, or records), plus an optional `params` object;
- `text/csv` with a header row.
The result maps each column name to its list of values (a CSV gives pandas-typed columns instead).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON = "application/json"
CSV = "text/csv"


class PayloadError(ValueError):
    """A request the server refuses, with the HTTP status and a message naming the problem."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Columns:
    """A parsed request: column name -> values (a list, or a numpy array from CSV), and the row count."""

    data: dict[str, Any]
    rows: int


def media_type(content_type: str | None) -> str:
    """'application/json; charset=utf-8' -> 'application/json'; refuses charsets other than UTF-8."""
    if not content_type:
        return JSON
    mime, *params = (part.strip() for part in content_type.split(";"))
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise PayloadError(f"unsupported charset {value.strip()!r}: send UTF-8", 415)
    return mime.lower()


def parse_body(body: bytes, content_type: str | None) -> Columns:
    """Parse one request body of the given Content-Type into columns."""
    mime = media_type(content_type)
    if mime == JSON:
        return parse_json(body)
    if mime == CSV:
        return parse_csv(body)
    raise PayloadError(f"unsupported Content-Type {mime!r}: send {JSON} or {CSV}", 415)


def parse_json(body: bytes) -> Columns:
    """Parse a JSON scoring request."""
    if not body.strip():
        raise PayloadError("empty request body: send a JSON object such as {\"dataframe_split\": ...}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PayloadError(f"the body must be a JSON object with one of {', '.join(FORMATS)}; "
                           f"got a JSON {_kind(doc)}")
    unknown = sorted(set(doc) - {*FORMATS, "params"})
    given = [key for key in FORMATS if key in doc]
    if unknown:
        raise PayloadError(f"unknown key(s) {', '.join(map(repr, unknown))}; "
                           f"expected exactly one of {', '.join(FORMATS)} (and optionally 'params')")
    if len(given) != 1:
        found = f"got {', '.join(given)}" if given else "got none"
        raise PayloadError(f"expected exactly one of {', '.join(FORMATS)}; {found}")
    if "params" in doc and not isinstance(doc["params"], dict):
        raise PayloadError("'params' must be a JSON object")
    key = given[0]
    value = doc[key]
    if key == "dataframe_split":
        return _split(value)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise PayloadError(f"dataframe_records must be a list of objects (one per row); got a JSON {_kind(value)}")
        return _records(value, key)
    if isinstance(value, list):
        return _records(value, key)
    if isinstance(value, dict):
        return _columnar(value, key)
    raise PayloadError(f"{key} must be a list of row objects or an object of columns; got a JSON {_kind(value)}")


def parse_csv(body: bytes) -> Columns:
    """Parse a CSV body (header row first) with pandas, as MLflow's scoring server does."""
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PayloadError(f"malformed CSV: {exc}") from None
    return Columns({str(name): frame[name].to_numpy() for name in frame.columns}, len(frame))


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _split(value: Any) -> Columns:
    if not isinstance(value, dict):
        raise PayloadError(f"dataframe_split must be an object with 'columns' and 'data'; got a JSON {_kind(value)}")
    extra = sorted(set(value) - {"columns", "data", "index"})
    if extra:
        raise PayloadError(f"dataframe_split: unknown key(s) {', '.join(map(repr, extra))}; "
                           "expected 'columns', 'data' and optionally 'index'")
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise PayloadError("dataframe_split.columns must be a list of column names")
    if len(set(columns)) != len(columns):
        raise PayloadError("dataframe_split.columns names a column twice")
    if not isinstance(data, list):
        raise PayloadError("dataframe_split.data must be a list of rows")
    width = len(columns)
    for number, row in enumerate(data):
        if not isinstance(row, list):
            raise PayloadError(f"dataframe_split.data[{number}] must be a list of {width} values")
        if len(row) != width:
            raise PayloadError(f"dataframe_split.data[{number}] has {len(row)} values for {width} columns")
    if not data:
        return Columns({name: [] for name in columns}, 0)
    return Columns({name: list(values) for name, values in zip(columns, zip(*data, strict=True), strict=True)},
                   len(data))


def _records(rows: list[Any], key: str) -> Columns:
    names: dict[str, None] = {}
    for number, row in enumerate(rows):
        if not isinstance(row, dict):
            raise PayloadError(f"{key}[{number}] must be an object of column: value; got a JSON {_kind(row)}")
        names.update(dict.fromkeys(row))
    return Columns({name: [row.get(name) for row in rows] for name in names}, len(rows))


def _columnar(columns: dict[str, Any], key: str) -> Columns:
    if all(not isinstance(v, list) for v in columns.values()):
        return Columns({name: [value] for name, value in columns.items()}, 1)
    lengths = {name: len(v) for name, v in columns.items() if isinstance(v, list)}
    if any(not isinstance(v, list) for v in columns.values()) or len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name}: {lengths.get(name, 'a scalar')}" for name in columns)
        raise PayloadError(f"{key}: every column needs the same number of values ({detail})")
    rows = next(iter(lengths.values()), 0)
    return Columns(dict(columns), rows)
