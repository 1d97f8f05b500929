"""Reading a dataset: CSV or Parquet from a local path or any fsspec URI, or the demo generator.

Every dataset carries a content hash for lineage: the SHA-256 of the bytes read, or, for demo://,
of the canonical generated frame (`frame_hash`).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.demo import demo_frame, is_demo
from pipelines.storage import read_bytes

#: File suffix -> format.
FORMATS: dict[str, str] = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


class DataError(Exception):
    """A dataset cannot be read (missing, unknown format, unparsable)."""


@dataclass(frozen=True)
class Dataset:
    """A dataset as read: where from, its frame, its content hash and its format."""

    uri: str
    frame: pd.DataFrame
    content_hash: str
    format: str

    @property
    def rows(self) -> int:
        """Number of rows."""
        return len(self.frame)


def dataset_format(uri: str) -> str:
    """The format of a dataset URI, from its suffix (`demo` for demo://)."""
    if is_demo(uri):
        return "demo"
    path = uri.split("?", 1)[0].lower()
    for suffix, fmt in sorted(FORMATS.items(), key=lambda item: -len(item[0])):
        if path.endswith(suffix):
            return fmt
    raise DataError(f"{uri}: unknown dataset format; expected one of {', '.join(sorted(FORMATS))} or demo://")


def frame_hash(frame: pd.DataFrame) -> str:
    """A SHA-256 over column names, dtypes and values, stable across runs and machines."""
    digest = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        digest.update(f"{name}\0{column.dtype}\0".encode())
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            digest.update(np.ascontiguousarray(column.to_numpy(dtype=np.float64, na_value=np.nan)).tobytes())
        else:
            digest.update("\x1f".join("\x00" if pd.isna(v) else str(v) for v in column.tolist()).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def parse_table(data: bytes, fmt: str, source: str = "") -> pd.DataFrame:
    """A frame from the bytes of a CSV or Parquet file."""
    try:
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data), compression="gzip" if source.lower().endswith(".gz") else None)
    except Exception as exc:  # pandas and pyarrow raise many types for a bad file
        raise DataError(f"{source}: cannot parse as {fmt}: {exc}") from exc


def read_dataset(uri: str) -> Dataset:
    """Read the dataset at `uri` (a path, an fsspec URI, or demo://...)."""
    fmt = dataset_format(uri)
    if fmt == "demo":
        try:
            frame = demo_frame(uri)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        return Dataset(uri=uri, frame=frame, content_hash=frame_hash(frame), format=fmt)
    try:
        data = read_bytes(uri)
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"{uri}: cannot read: {exc}") from exc
    return Dataset(uri=uri, frame=parse_table(data, fmt, uri), content_hash=hashlib.sha256(data).hexdigest(),
                   format=fmt)
