"""The demo generator and dataset reading: deterministic, controllable shifts, content hashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.data import DataError, dataset_format, frame_hash, read_dataset
from pipelines.demo import demo_frame, demo_traffic, parse_demo_uri


def test_same_uri_same_frame_and_hash() -> None:
    uri = "demo://classification?rows=500&seed=3&missing=0.05"
    assert demo_frame(uri).equals(demo_frame(uri))
    assert read_dataset(uri).content_hash == read_dataset(uri).content_hash
    assert read_dataset(uri).content_hash != read_dataset("demo://classification?rows=500&seed=4").content_hash


def test_schema_and_knobs() -> None:
    frame = demo_frame("demo://classification?rows=4000&seed=1&prior=0.7&missing=0.1")
    assert list(frame.columns) == [*(f"num_{i}" for i in range(6)), "cat_0", "cat_1", "label"]
    assert abs(frame["label"].mean() - 0.7) < 0.03
    assert abs(frame["num_2"].isna().mean() - 0.1) < 0.02 and frame["cat_1"].isna().mean() > 0.05
    assert frame["num_0"].isna().sum() == 0
    wide = demo_frame("demo://regression?rows=100&seed=1&numeric=20&target=y")
    assert "num_19" in wide.columns and "y" in wide.columns


def test_shift_moves_one_feature_by_that_many_standard_deviations() -> None:
    base = demo_frame("demo://classification?rows=5000&seed=2")
    shifted = demo_frame("demo://classification?rows=5000&seed=2&shift=0.5&shift_feature=num_3")
    moved = (shifted["num_3"].mean() - base["num_3"].mean()) / base["num_3"].std(ddof=0)
    assert moved == pytest.approx(0.5, abs=1e-6)
    assert shifted["num_0"].equals(base["num_0"])


def test_labels_carry_signal() -> None:
    frame = demo_frame("demo://classification?rows=3000&seed=5")
    assert frame.groupby("label")["num_0"].mean().diff().iloc[-1] > 5  # class effect on num_0
    regression = demo_frame("demo://regression?rows=3000&seed=5")
    assert np.corrcoef(regression["num_0"], regression["target"])[0, 1] > 0.5


def test_traffic_keeps_the_schema_and_drops_the_target() -> None:
    traffic = demo_traffic("demo://classification?rows=5000&seed=7", rows=300, shift=1.0, prior=0.3)
    assert list(traffic.columns) == [*(f"num_{i}" for i in range(6)), "cat_0", "cat_1"]
    assert len(traffic) == 300
    labelled = demo_traffic("demo://classification?rows=5000&seed=7", rows=3000, prior=0.3, include_target=True)
    assert abs(labelled["label"].mean() - 0.3) < 0.03
    assert not labelled.equals(demo_frame("demo://classification?rows=3000&seed=7"))  # never the training rows


@pytest.mark.parametrize("uri", ["demo://images", "demo://classification?rows=0", "demo://classification?colour=1",
                                 "demo://regression?prior=0.3", "demo://classification?shift_feature=cat_0",
                                 "demo://classification?rows=ten"])
def test_bad_demo_uris_say_why(uri: str) -> None:
    with pytest.raises(ValueError, match="demo://"):
        parse_demo_uri(uri)
    with pytest.raises(DataError):
        read_dataset(uri)


def test_csv_and_parquet_locally_and_through_fsspec(tmp_path: Path) -> None:
    import fsspec

    frame = demo_frame("demo://classification?rows=200&seed=1")
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    csv, parquet = read_dataset(str(tmp_path / "d.csv")), read_dataset(f"file://{tmp_path}/d.parquet")
    assert (csv.format, parquet.format, csv.rows, parquet.rows) == ("csv", "parquet", 200, 200)
    pd.testing.assert_frame_equal(parquet.frame, frame)
    assert csv.content_hash == __import__("hashlib").sha256((tmp_path / "d.csv").read_bytes()).hexdigest()
    fsspec.filesystem("memory").pipe("/bucket/d.parquet", (tmp_path / "d.parquet").read_bytes())
    remote = read_dataset("memory://bucket/d.parquet")
    assert remote.content_hash == parquet.content_hash


def test_unknown_formats_and_missing_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset format"):
        dataset_format("s3://b/data.xlsx")
    with pytest.raises(DataError, match="cannot read"):
        read_dataset(str(tmp_path / "absent.csv"))
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot parse"):
        read_dataset(str(tmp_path / "broken.parquet"))


def test_frame_hash_sees_values_names_and_dtypes() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", None]})
    assert frame_hash(frame) == frame_hash(frame.copy())
    assert frame_hash(frame) != frame_hash(frame.assign(a=[1.0, 2.5]))
    assert frame_hash(frame) != frame_hash(frame.rename(columns={"a": "c"}))
    assert frame_hash(frame) != frame_hash(frame.astype({"a": "float32"}))
