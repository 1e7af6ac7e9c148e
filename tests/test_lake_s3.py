"""The lake on an S3-compatible store: a moto server on loopback, the standard AWS environment."""

import datetime as dt

import polars as pl
import pyarrow.fs as pafs
import pytest

from pipeline import sql
from pipeline.lake import Lake

moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_lake(s3_endpoint, monkeypatch, request):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    bucket = request.node.name.replace("_", "-").lower()[:40]
    host = s3_endpoint.removeprefix("http://")
    pafs.S3FileSystem(
        endpoint_override=host,
        scheme="http",
        access_key="test",
        secret_key="test",
        region="us-east-1",
        allow_bucket_creation=True,
    ).create_dir(bucket)
    return Lake(f"s3://{bucket}/lake")


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
