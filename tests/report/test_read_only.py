"""`trace2skill sql` only reads: what a hostile query file tries, and what still works.

The lake here is built for this module alone, so an attack that got through would not spoil the
lake the other report tests share.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from pipeline import sql as sqlfiles
from pipeline.cli import main
from pipeline.lake import Lake
from pipeline.report.views import build_warehouse

from . import fixture
from .test_run_scope import AIRLINE, add_run

PARAMS = {"skill_line_lineage": ["-p", "file=SKILL.md", "-p", "line_no=3"]}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("read-only")
    lake = Lake(root / "lake")
    fixture.build(lake, root / "out" / "skill")
    return lake


def sql(lake: Lake, *args, input=None):
    return CliRunner().invoke(main, ["sql", "--lake", lake.uri, *map(str, args)], input=input)


def n_trajectories(lake: Lake) -> int:
    r = sql(lake, "--format", "csv", "select count(*) as n from trajectories")
    assert r.exit_code == 0, r.output
    return int(r.stdout.split()[-1])


def lake_files(lake: Lake) -> set[Path]:
    return {p for p in Path(lake.base).rglob("*") if p.is_file()}


@pytest.fixture
def untouched(lake):
    """The lake's files and row count are the same after the test."""
    files, count = lake_files(lake), n_trajectories(lake)
    yield
    assert lake_files(lake) == files
    assert n_trajectories(lake) == count == 11


def test_copy_into_the_lake_is_refused(lake, untouched, tmp_path):
    part = sorted(Path(lake.table_dir("trajectories")).rglob("part-*.parquet"))[0]
    copy = f"copy (select * from trajectories limit 1) to '{part.parent}/part-extra.parquet'"
    r = sql(lake, copy)
    assert r.exit_code == 1
    assert "refused: only a SELECT (or WITH ... SELECT) is allowed, not COPY" in r.output
    assert "`sql` only reads the lake" in r.output
    query = tmp_path / "copy.sql"
    query.write_text(f"select 1 as one;\n{copy};\n")
    r = sql(lake, "-f", query)
    assert r.exit_code == 1
    assert f"refused in {query}: statement 2 of 2 (`copy (select * from" in r.output
    assert "one" not in r.stdout, "nothing runs when one statement is refused"


def test_attach_is_refused_and_creates_no_file(lake, untouched, tmp_path):
    target = tmp_path / "other.duckdb"
    r = sql(lake, f"attach '{target}' as other")
    assert r.exit_code == 1 and "not ATTACH" in r.output
    assert not target.exists()


@pytest.mark.parametrize(
    "query,kind",
    [
        ("install json", "LOAD"),
        ("load json", "LOAD"),
        ("set threads = 1", "SET"),
        ("set allowed_directories = ['/']", "SET"),
        ("pragma version", "PRAGMA"),
        ("call pragma_version()", "CALL"),
        ("create table t as select 1", "CREATE"),
    ],
)
def test_statements_other_than_select_are_refused(lake, query, kind):
    r = sql(lake, query)
    assert r.exit_code == 1 and f"not {kind}" in r.output and "only reads the lake" in r.output


def test_files_outside_the_lake_are_refused(lake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "note.txt").write_text("private")
    for query in (
        "select content from read_text('/etc/passwd')",
        "select * from read_csv('/etc/passwd')",
        "select content from read_text('.tmp/note.txt')",
        f"select * from read_text('{lake.table_dir('trajectories')}/../../../.tmp/note.txt')",
    ):
        r = sql(lake, query)
        assert r.exit_code == 1, query
        assert "refused: Permission Error" in r.output and "no other file" in r.output
    assert "private" not in r.output


def test_several_selects_show_each_table(lake, tmp_path):
    query = tmp_path / "two.sql"
    query.write_text(
        "select count(*) as n_runs from trajectories;\n"
        "select count(*) as n_failed from trajectories where outcome = $outcome;\n"
    )
    r = sql(lake, "-f", query, "-p", "outcome=failure")
    assert r.exit_code == 0, r.output
    assert "n_runs" in r.stdout and "11" in r.stdout and "n_failed" in r.stdout
    r = sql(lake, "-f", query, "-p", "outcome=failure", "--format", "csv")
    assert r.exit_code == 2 and f"the query in {query} holds 2 statements" in r.output
    r = sql(lake, "select 1 as one", "-p", "typo=1")
    assert r.exit_code == 1 and "no statement uses $typo" in r.output


def test_reading_still_works(lake, tmp_path):
    r = sql(
        lake,
        "--format",
        "csv",
        "select outcome, count(*) as n from trajectories group by 1 order by 1",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == ["outcome,n", "failure,8", "success,3"]
    out = tmp_path / "calls.parquet"
    r = sql(lake, "select * from tool_calls", "--out", out)
    assert r.exit_code == 0, r.output
    assert pl.read_parquet(out).height > 0
    r = sql(lake, "--format", "csv", "describe trajectories")
    assert r.exit_code == 0 and "trajectory_id" in r.stdout
    for path in sorted((sqlfiles.SQL_DIR / "examples").glob("*.sql")):
        r = sql(lake, "-f", path, *PARAMS.get(path.stem, []), "--format", "csv")
        assert r.exit_code == 0, (path.name, r.output)


def test_the_prompt_is_read_only_too(lake, untouched, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "out.csv"
    session = "\n".join(
        [
            f"copy trajectories to '{target}';",
            "select 1 as a; attach 'x.duckdb';",
            "select 'still here' as alive; select 'and here' as also;",
            ".quit",
        ]
    )
    r = CliRunner().invoke(
        main,
        ["sql", "--lake", lake.uri, "-i"],
        input=session + "\n",
        env={"T2S_SQL_HISTORY": str(tmp_path / "history")},
    )
    assert r.exit_code == 0, r.output
    assert "not COPY" in r.stderr and "statement 2 of 2" in r.stderr and "not ATTACH" in r.stderr
    assert "still here" in r.stdout and "and here" in r.stdout
    assert not target.exists() and not (tmp_path / "x.duckdb").exists()


def test_a_recorded_where_reads_nothing_outside_the_lake(lake, tmp_path):
    """A consolidation's --where is SQL kept in the lake and pasted into run_trajectories: on a
    lake from elsewhere it must not read local files, in `sql` or in the warehouse."""
    secret = tmp_path / "secret.txt"
    secret.write_text("retail")
    copy = Lake(tmp_path / "lake")
    shutil.copytree(lake.base, copy.base)
    where = f"source = (select trim(content) from read_text('{secret}'))"
    add_run(copy, "r-odd", where, reads=["L1a", "L3a"], days=9)
    query = "select trajectory_id, scope from run_trajectories where run_id = 'r-odd'"
    r = sql(copy, "--format", "csv", query)
    assert r.exit_code == 0, r.output
    rows = pl.read_csv(io.StringIO(r.stdout))
    # The --where could not run, so the run counts the sources it read (airline), not 'retail'.
    assert set(rows["trajectory_id"]) == AIRLINE and set(rows["scope"]) == {"sources"}
    path = build_warehouse(copy, tmp_path / "w.duckdb")
    wh = duckdb.connect(str(path), read_only=True)
    assert set(wh.sql(query).fetchall()) == {(t, "sources") for t in AIRLINE}
    wh.close()
