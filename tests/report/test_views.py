import re

import polars as pl
import pytest

from pipeline import schemas
from pipeline import sql as sqlfiles
from pipeline.report.views import (
    VIEW_FILES,
    connect_views,
    view_descriptions,
    view_names,
)


@pytest.fixture(scope="module")
def con(fixture_lake):
    con = connect_views(fixture_lake)
    yield con
    con.close()


def test_every_view_file_is_loaded_and_headed():
    on_disk = sorted(p.stem for p in sqlfiles.SQL_DIR.glob("views_*.sql"))
    assert sorted(VIEW_FILES) == on_disk
    for name in on_disk:
        text = sqlfiles.load(name)
        assert text.startswith("-- "), name
        assert "grain:" in text and "inputs:" in text and "parameters:" in text, name


def test_every_run_table_has_a_latest_view():
    run_tables = [n for n, t in schemas.REGISTRY.items() if t.partition_by == ("run_id",)]
    assert run_tables, "no run-partitioned table registered"
    names = set(view_names())
    assert {f"latest_{t}" for t in run_tables} <= names
    assert all(view_descriptions()[n] for n in names)


def test_latest_run_is_the_newest(con):
    assert con.sql("select run_id from latest_run").fetchall() == [("r1",)]
    runs = con.sql("select distinct run_id from latest_skill_lines").fetchall()
    assert runs == [("r1",)]


def test_tool_calls_join_each_call_to_its_result(con):
    calls = con.sql(
        "select trajectory_id, call_step_idx, result_step_idx, tool_name, is_answered, is_error "
        "from tool_calls order by trajectory_id, call_step_idx"
    ).pl()
    assert calls.height == 14  # one row per call, never one per result
    by = {(r["trajectory_id"], r["call_step_idx"]): r for r in calls.iter_rows(named=True)}
    assert by[("T1", 3)]["result_step_idx"] == 4 and by[("T1", 3)]["is_error"]
    # T4's first result names its call only by tool_call_id
    assert by[("T4", 1)]["result_step_idx"] == 2 and by[("T4", 1)]["is_answered"]
    assert not by[("T3", 1)]["is_answered"] and by[("T3", 1)]["result_step_idx"] is None


def test_lesson_facts_carry_the_run(con):
    row = con.sql(
        "select source, task_id, model, analyst_model, outcome from lesson_facts "
        "where lesson_id = 'L2b'"
    ).fetchall()[0]
    assert row == ("airline", "t1", "claude", "offline", "failure")


def test_skill_lessons_follow_statements_and_kept_clusters(con):
    got = con.sql(
        "select lesson_id, via_statement, via_cluster from latest_skill_lessons order by 1"
    ).fetchall()
    assert got == [
        ("L1a", True, True),
        ("L2a", False, True),
        ("L2b", False, True),
        ("L3a", False, True),
        ("L6a", True, True),
    ]
    # the older run only knew C1
    old = con.sql("select lesson_id from skill_lessons where run_id = 'r0' order by 1").fetchall()
    assert old == [("L1a",), ("L2a",)]


def test_lesson_fate_names_where_every_lesson_went(con):
    fate = dict(con.sql("select lesson_id, fate from latest_lesson_fate").fetchall())
    assert fate == {
        "L1a": "merged",
        "L2a": "deduplicated",
        "L2b": "merged",
        "L3a": "merged",
        "L6a": "merged",
        "L1b": "dropped",
        "L7a": "dropped",
        "L4a": "dropped",
        "L4b": "unaccounted",
    }
    row = con.sql(
        "select dropped_stage, dropped_reason, dropped_node_id, cluster_kept "
        "from latest_lesson_fate where lesson_id = 'L4a'"
    ).fetchall()[0]
    assert row == ("merge", "conflicts with a stronger lesson", "N1", True)


def test_views_work_on_an_empty_lake(lake):
    con = connect_views(lake)
    for name in view_names():
        assert con.sql(f"select count(*) from {name}").fetchall()[0] == (0,), name
    assert con.sql("select count(*) from lake_columns").fetchall()[0][0] > 50


def test_lake_columns_describe_every_column(con):
    cols = con.sql("select table_name, column_name, description from lake_columns").pl()
    expected = sum(len(t.columns) for t in schemas.REGISTRY.values())
    assert cols.height == expected
    assert cols.filter(pl.col("description") == "").height == 0


def test_sql_files_have_a_header():
    for path in sorted(sqlfiles.SQL_DIR.rglob("*.sql")):
        if not re.match(
            r"(views|coverage|report)_|examples/", str(path.relative_to(sqlfiles.SQL_DIR))
        ):
            continue
        head = path.read_text().splitlines()[:12]
        joined = "\n".join(head)
        assert head[0].startswith("-- "), path
        assert "grain:" in joined and "inputs:" in joined, path


def test_object_store_lakes_read_through_pyarrow(fixture_lake):
    """Lakes on object stores are read through pyarrow datasets: same rows as the local path."""
    from pipeline.lake import Lake

    remote = Lake(fixture_lake.base)
    remote.is_local = False  # stands for s3://...: the filesystem is still the local one
    a, b = connect_views(fixture_lake), connect_views(remote)
    for view in ("lesson_fate", "tool_calls", "latest_skill_line_lessons"):
        q = (
            f"select * exclude (statements) from {view}"
            if view == "lesson_fate"
            else f"select * from {view}"
        )
        left = a.sql(q).pl()
        right = b.sql(q).pl()
        keys = [c for c, t in left.schema.items() if not isinstance(t, pl.List)]
        assert left.sort(keys, nulls_last=True).equals(right.sort(keys, nulls_last=True)), view
