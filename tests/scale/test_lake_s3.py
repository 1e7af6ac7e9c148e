"""The lake on an S3-compatible store: a moto server on loopback, the standard AWS environment."""

import datetime as dt

import polars as pl
import pytest

from pipeline import sql
from pipeline.lake import Lake, LakeError


def _errors(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "file": [f"f{i}" for i in range(n)],
            "file_sha256": [None] * n,
            "record": [str(i) for i in range(n)],
            "format": ["json"] * n,
            "error": ["bad"] * n,
            "ingested_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * n,
        }
    )


def test_write_scan_and_query_on_s3(s3_lake: Lake):
    assert s3_lake.read("ingest_errors").height == 0
    s3_lake.write_part("ingest_errors", _errors(3), part="a")
    s3_lake.write_part("ingest_errors", _errors(2), part="b")
    assert s3_lake.read("ingest_errors").height == 5
    con = sql.connect(s3_lake)
    assert con.execute("select count(*) from ingest_errors").fetchone()[0] == 5


def test_partitions_on_s3(s3_lake: Lake):
    df = pl.DataFrame(
        {
            "run_id": ["r1"],
            "lesson_id": ["l1"],
            "cluster_id": [None],
            "stage": ["support"],
            "reason": ["one-off"],
            "node_id": [None],
        }
    )
    s3_lake.replace_partition("dropped", df, {"run_id": "r1"})
    s3_lake.replace_partition("dropped", df, {"run_id": "r1"}, part="1")
    out = s3_lake.read("dropped")
    assert out.height == 1 and out["run_id"].to_list() == ["r1"]


def test_a_lake_is_present_once_written(s3_lake: Lake):
    assert not s3_lake.is_present()
    s3_lake.check()  # the bucket exists: a lake can be started in it
    s3_lake.write_part("ingest_errors", _errors(1), part="a")
    assert s3_lake.is_present()


def test_scan_of_chosen_parts(s3_lake: Lake):
    s3_lake.write_part("ingest_errors", _errors(3), part="a")
    s3_lake.write_part("ingest_errors", _errors(2), part="b")
    [a, b] = s3_lake.parts("ingest_errors")
    assert s3_lake.scan("ingest_errors", [b]).collect().height == 2
    assert s3_lake.scan("ingest_errors", []).collect().height == 0


def test_a_missing_bucket_is_named(s3):
    lake = Lake("s3://no-such-bucket/lake")
    with pytest.raises(LakeError, match="bucket 'no-such-bucket' does not exist"):
        lake.check()
    with pytest.raises(LakeError, match="does not exist"):
        lake.write_part("ingest_errors", _errors(1), part="a")


def test_an_unreachable_store_is_a_lake_error(s3, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    lake = Lake("s3://bucket/lake")
    with pytest.raises(LakeError, match=r"s3://bucket/lake: cannot reach the store.*AWS_ENDPOINT"):
        lake.check()


def test_a_half_written_batch_on_s3_goes_only_after_the_grace_period(s3_lake: Lake, monkeypatch):
    from pipeline import writers
    from pipeline.analyse.run import analyse
    from pipeline.analyse.tidy import tidy
    from tests.analyse import builders, domains

    builders.write(s3_lake, domains.shop_runs())
    analyse(s3_lake)
    s3_lake.write_part("lessons", s3_lake.read("lessons").head(2), part="in-flight")
    n_parts = len(s3_lake.parts("lessons"))
    assert tidy(s3_lake)["lessons parts without their analyses part"] == 0
    assert len(s3_lake.parts("lessons")) == n_parts  # no lock to ask: its writer may be alive
    monkeypatch.setattr(writers, "OBJECT_STORE_GRACE", dt.timedelta(0))
    assert tidy(s3_lake)["lessons parts without their analyses part"] == 1
    assert len(s3_lake.parts("lessons")) == n_parts - 1
