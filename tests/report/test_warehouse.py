import shutil

import duckdb
import polars as pl
import pytest

from pipeline import schemas
from pipeline.lake import Lake, LakeError
from pipeline.report.views import base_view_sql, build_warehouse, connect_views, view_names

from . import fixture


@pytest.fixture(scope="module")
def odd_lake(fixture_lake, tmp_path_factory):
    """The fixture lake copied under a path that needs quoting (a quote, spaces, a bracket)."""
    root = tmp_path_factory.mktemp("wh") / "it's a [lake]"
    shutil.copytree(fixture_lake.base, root)
    return Lake(root)


def _frame(con, query):
    """A result in a total order (every non-nested column sorts it)."""
    frame = con.sql(query).pl()
    keys = [c for c, t in frame.schema.items() if not isinstance(t, (pl.List, pl.Struct))]
    return frame.sort(keys, nulls_last=True)


@pytest.mark.parametrize("which", ["plain path", "path needing quotes"])
def test_warehouse_views_match_the_lake(which, fixture_lake, odd_lake, tmp_path):
    lake = odd_lake if which == "path needing quotes" else fixture_lake
    path = build_warehouse(lake, tmp_path / "w.duckdb")
    assert path.is_file() and not list(tmp_path.glob(".*tmp*"))
    wh = duckdb.connect(str(path), read_only=True)
    live = connect_views(lake)
    for name in [*schemas.REGISTRY, *view_names()]:
        got = _frame(wh, f"select * from {name}")
        want = _frame(live, f"select * from {name}")
        assert got.columns == want.columns, name
        assert got.equals(want), name
    assert wh.sql("select count(*) from lake_columns").fetchall()[0][0] > 50
    wh.close()


def test_warehouse_sees_new_parts_without_a_rebuild(fixture_lake, tmp_path):
    lake = Lake(tmp_path / "lake")
    shutil.copytree(fixture_lake.base, lake.base)
    path = build_warehouse(lake, tmp_path / "w.duckdb")
    extra = fixture.frame(
        "llm_calls",
        [
            {
                "call_id": "z",
                "key": "z",
                "stage": "rollout",
                "kind": "chat",
                "model": "m",
                "params": "{}",
                "request": "{}",
            }
        ],
    )
    lake.write_part("llm_calls", extra, part="later")
    wh = duckdb.connect(str(path), read_only=True)
    assert wh.sql("select count(*) from llm_calls").fetchall() == [(7,)]
    wh.close()


def test_empty_tables_are_typed_views(lake, tmp_path):
    path = build_warehouse(lake, tmp_path / "empty.duckdb")
    wh = duckdb.connect(str(path), read_only=True)
    types = dict(
        wh.sql(
            "select column_name, data_type from information_schema.columns where table_name = 'skill_lines'"
        ).fetchall()
    )
    assert types["lesson_ids"] == "VARCHAR[]" and types["line_no"] == "BIGINT"
    assert wh.sql("select count(*) from latest_lesson_fate").fetchall() == [(0,)]
    wh.close()


def test_paths_are_quoted_not_pasted(odd_lake):
    types = {"run_id": "VARCHAR"}
    ddl = base_view_sql(
        odd_lake, "dropped", types | {c: "VARCHAR" for c in schemas.table("dropped").columns}
    )
    assert "it''s a [lake]" in ddl  # the quote doubled; the bracket listed, not globbed
    assert "'*/part-*.parquet'" not in ddl


def test_object_store_lakes_are_refused(tmp_path):
    remote = Lake(tmp_path / "lake")
    remote.is_local = False  # stands for s3://...: no network in tests
    with pytest.raises(LakeError, match="local lake"):
        build_warehouse(remote, tmp_path / "w.duckdb")


def test_rebuild_replaces_the_file(fixture_lake, tmp_path):
    out = tmp_path / "w.duckdb"
    out.write_bytes(b"not a database")
    build_warehouse(fixture_lake, out)
    wh = duckdb.connect(str(out), read_only=True)
    assert wh.sql("select run_id from latest_run").fetchall() == [("r1",)]
    wh.close()
