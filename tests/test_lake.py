import datetime as dt
import os

import polars as pl
import pytest

from pipeline.lake import Lake, LakeError


def _errors(n: int, tag: str = "x") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "file": [f"{tag}{i}" for i in range(n)],
            "file_sha256": [None] * n,
            "record": [str(i) for i in range(n)],
            "format": ["json"] * n,
            "error": ["bad"] * n,
            "ingested_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * n,
        }
    )


def test_empty_table_scans_with_schema(lake: Lake):
    df = lake.read("steps")
    assert df.height == 0 and "step_idx" in df.columns


def test_parts_append_and_replace(lake: Lake):
    lake.write_part("ingest_errors", _errors(2), part="a")
    lake.write_part("ingest_errors", _errors(3), part="b")
    assert lake.read("ingest_errors").height == 5
    lake.write_part("ingest_errors", _errors(1), part="a")
    assert lake.read("ingest_errors").height == 4


def test_unfinished_writes_are_invisible(lake: Lake):
    lake.write_part("ingest_errors", _errors(2), part="a")
    directory = lake.table_dir("ingest_errors")
    with open(os.path.join(directory, ".part-b.123.tmp"), "wb") as fh:
        fh.write(b"PAR1 half a file")
    assert lake.read("ingest_errors").height == 2


def test_partitioned_table_needs_its_partition(lake: Lake):
    with pytest.raises(LakeError, match="partitioned by"):
        lake.write_part("trajectories", pl.DataFrame(), part="a", validate=False)


def test_lake_refuses_newer_schema(lake: Lake):
    lake.ensure()
    with open(lake.path("_lake.json"), "w") as fh:
        fh.write('{"schema_version": 99}')
    with pytest.raises(LakeError, match="upgrade"):
        lake.ensure()


def test_parts_written_before_a_column_was_added_still_read(lake: Lake):
    old = _errors(2).drop("format")  # as a part written by an older schema
    directory = lake.table_dir("ingest_errors")
    os.makedirs(directory, exist_ok=True)
    old.write_parquet(os.path.join(directory, "part-a.parquet"))
    lake.write_part("ingest_errors", _errors(1), part="b")  # sorts after the old part
    df = lake.read("ingest_errors").sort("file")
    assert df.height == 3 and df["format"].null_count() == 2
