"""The agentic analyst's tools: read-only SQL over the pool, and reading one run and the skill."""

from __future__ import annotations

import asyncio

import polars as pl
import pytest

from pipeline.analyse.lakeview import LakeView, QueryRefused, check_select
from pipeline.analyse.sections import parse_sections
from pipeline.analyse.tools import MAX_READ_STEPS, RunTools
from tests.analyse import builders, scripted
from tests.analyse.builders import call, user


@pytest.fixture(params=[True, False], ids=["parquet", "arrow"])
def view(lake, request):
    """Over DuckDB's own Parquet reader (local lakes) and over pyarrow datasets (object stores)."""
    scripted.small_lake(lake)
    v = LakeView(lake, native=request.param)
    yield v
    v.close()


@pytest.mark.parametrize(
    "sql,reason",
    [
        ("insert into steps select * from steps", "not INSERT"),
        ("copy (select 1) to 'x.csv'", "not COPY"),
        ("select 1; select 2", "one statement only, got 2"),
        ("pragma version", "not PRAGMA"),
        ("attach 'x.db' as x", "not ATTACH"),
        ("set enable_external_access = true", "not SET"),
        ("selec 1", "not valid SQL: Parser Error: syntax error"),
        ("  ", "the query is empty"),
    ],
)
def test_only_one_select_passes(sql, reason):
    with pytest.raises(QueryRefused, match=reason):
        check_select(sql)


def test_queries_see_the_lake_and_nothing_else(view, tmp_path):
    assert view.query("select outcome, count(*) n from trajectories group by 1 order by 1") == (
        "outcome | n\nfailure | 7\nsuccess | 13"
    )
    out = view.query(
        "with e as (select tool_name, is_error from tool_calls) "
        "select tool_name, count(*) filter (where is_error) as failed from e "
        "group by 1 having failed > 0 order by 1"
    )
    assert out == "tool_name | failed\nSearch | 6\nplace_order | 3"
    (tmp_path / "secret.csv").write_text("a\n1\n")
    with pytest.raises(QueryRefused, match="Permission Error"):
        view.query(f"select * from read_csv('{tmp_path / 'secret.csv'}')")
    with pytest.raises(QueryRefused, match="Catalog Error"):
        view.query("select * from llm_calls")
    calls = f"{view.lake.table_dir('llm_calls')}/x.parquet"
    with pytest.raises(QueryRefused, match="Permission Error"):
        view.query(f"select * from read_parquet('{calls}')")
    capped = LakeView(view.lake, row_cap=5, native=view.native)
    rows = capped.query("select trajectory_id, step_idx from steps order by 1, 2").splitlines()
    assert len(rows) == 7 and rows[-1].startswith("[only the first 5 rows are shown")
    capped.close()


def test_queries_cannot_read_a_temporary_folder(lake, tmp_path, monkeypatch):
    """DuckDB lets any query read its temporary folder (by default .tmp under the working
    folder): the pool's connection has none."""
    scripted.small_lake(lake)
    work = tmp_path / "work"
    (work / ".tmp").mkdir(parents=True)
    (work / ".tmp" / "note.txt").write_text("private")
    monkeypatch.chdir(work)
    for native in (True, False):
        v = LakeView(lake, native=native)
        for path in (".tmp/note.txt", str(work / ".tmp" / "note.txt")):
            with pytest.raises(QueryRefused, match="Permission Error"):
                v.query(f"select content from read_text('{path}')")
        assert v.query("select count(*) as n from trajectories") == "n\n20"
        v.close()


def test_a_slow_query_is_stopped(lake):
    scripted.small_lake(lake)
    v = LakeView(lake, time_limit_s=0.3)
    with pytest.raises(QueryRefused, match="ran past 0.3 s and was stopped"):
        v.query(
            "select count(*) from range(10000000000) a, range(10) b where (a.range * b.range) % 7 = 3"
        )
    assert v.query("select 1 as one") == "one\n1", "the database is usable after an interrupt"
    v.close()


def tools_for(view: LakeView, steps_spec, **kw) -> RunTools:
    traj, steps = builders.frames([builders.run("r", "shop", "failure", steps_spec, task_id="t9")])
    return RunTools(traj.row(0, named=True), steps, view, **kw)


def run(tools: RunTools, name, args, raw=""):
    return asyncio.run(tools.run(name, args, raw))


def test_reading_and_searching_the_run(view):
    secret = "sk-abcdefghijklmnopqrstuvwxyz123456"
    tools = tools_for(
        view,
        [user(f"use key {secret}")]
        + [call("lookup", {"n": i}, f"row {i}" + " pad" * 300) for i in range(30)],
    )
    text, bad = run(tools, "read_steps", {"start": 0, "end": 100})
    assert not bad and text.startswith("[0] user: use key [REDACTED:api-key]")
    assert secret not in text and "[... stopped to fit: read on from the next step" in text
    text, _ = run(tools, "read_steps", {"start": 0, "end": 59})
    assert len(text) <= 8000
    many = tools_for(view, [call("t", {"i": i}, "ok") for i in range(30)])
    text, _ = run(many, "read_steps", {"start": 0, "end": 59})
    assert text.endswith(f"[... {60 - MAX_READ_STEPS} more steps: read them next]")
    assert run(tools, "read_steps", {"start": 9, "end": 3}) == (
        "error: end (3) is before start (9)",
        True,
    )
    assert run(tools, "read_steps", {"start": 500, "end": 600})[0] == (
        "error: the run has steps 0..60"
    )
    text, bad = run(tools, "search_run", {"pattern": r"row 1\d", "max_hits": 3})
    assert not bad and text.splitlines()[0] == "10 steps match 'row 1\\\\d':"
    assert text.splitlines()[1].startswith("[22] tool_result lookup: row 10 pad")
    assert text.endswith("[... 7 more matches]")
    assert run(tools, "search_run", {"pattern": "nothing like this"})[0] == (
        "no step matches 'nothing like this'"
    )
    assert run(tools, "search_run", {"pattern": "sk-abc"})[0] == "no step matches 'sk-abc'", (
        "search reads the redacted run"
    )


def test_other_runs_gold_and_the_skill(view):
    tools = tools_for(view, [user("hi"), call("get_user", {"user_id": "u1"}, "{}")])
    text, _ = run(tools, "successful_run", {})
    assert text == "no other successful run of task t9 in source shop (0 runs of it in the lake)"
    assert "compare_gold" not in tools.by_name and "read_skill" not in tools.by_name
    skill = parse_sections("# S\n\n## Placing orders\n\nConfirm first.\n\n## Refunds\n\nNo.\n")
    with_skill = tools_for(view, [user("hi")], sections=skill)
    assert run(with_skill, "read_skill", {"section": "placing orders"})[0] == (
        "## Placing orders\nConfirm first."
    )
    text, bad = run(with_skill, "read_skill", {"section": "Returns"})
    assert (
        bad
        and text == "error: no section 'Returns'; the sections are 'S', 'Placing orders', 'Refunds'"
    )
    shop = view.lake.read("trajectories").filter(pl.col("trajectory_id") == "f_args")
    steps = view.steps_of("f_args", "shop")
    assert steps["step_idx"].to_list() == list(range(8))
    contrast, n = view.contrast(shop.row(0, named=True))
    assert contrast["trajectory_id"].to_list() == ["s0", "s1", "s2", "s3"] and n == 8


def test_a_table_without_parts_reads_as_empty(lake):
    traj, _ = builders.frames([builders.run("r", "s", "failure", [user("x")])])
    lake.write_part("trajectories", traj, part="p", partition={"source": "s"})
    v = LakeView(lake)
    assert v.query("select count(*) as n from tool_calls") == "n\n0"
    assert (
        v.query("select trajectory_id, source from trajectories") == "trajectory_id | source\nr | s"
    )
    v.close()
