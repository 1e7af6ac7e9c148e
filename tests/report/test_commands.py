"""The sql, warehouse and coverage commands as a user runs them."""

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main

from . import fixture


def run(*args, input=None, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, env=env)


def test_sql_query_as_table(fixture_lake):
    r = run(
        "sql",
        "--lake",
        fixture_lake.uri,
        "select outcome, count(*) as n from trajectories group by 1 order by 1",
    )
    assert r.exit_code == 0, r.output
    assert "failure" in r.stdout and "8" in r.stdout and "success" in r.stdout


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_sql_formats_on_stdout(fixture_lake, fmt):
    q = "select lesson_id, statements from latest_skill_lessons order by lesson_id"
    r = run("sql", "--lake", fixture_lake.uri, q, "--format", fmt)
    assert r.exit_code == 0, r.output
    if fmt == "csv":
        lines = r.stdout.strip().splitlines()
        assert lines[0] == "lesson_id,statements" and lines[1] == 'L1a,"[""SKILL.md:3""]"'
    else:
        rows = json.loads(r.stdout)
        assert rows[0] == {"lesson_id": "L1a", "statements": ["SKILL.md:3"]} and len(rows) == 5


def test_sql_to_parquet_file(fixture_lake, tmp_path):
    out = tmp_path / "fate.parquet"
    r = run("sql", "--lake", fixture_lake.uri, "select * from latest_lesson_fate", "--out", out)
    assert r.exit_code == 0, r.output
    assert pl.read_parquet(out).height == 9


def test_sql_reads_stdin(fixture_lake):
    r = run(
        "sql", "--lake", fixture_lake.uri, "--format", "csv", input="select 40 + 2 as answer;\n"
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines() == ["answer", "42"]


def test_sql_errors_are_clear(fixture_lake, tmp_path):
    r = run("sql", "--lake", fixture_lake.uri, "select nope from trajectories")
    assert r.exit_code == 1 and "query failed" in r.output and "nope" in r.output
    r = run("sql", "--lake", tmp_path / "missing", "select 1")
    assert r.exit_code == 1 and "no lake at" in r.output
    r = run("sql", "--lake", fixture_lake.uri, "select 1", "--format", "parquet")
    assert r.exit_code == 2 and "needs --out" in r.output
    r = run("sql", "--lake", fixture_lake.uri, "select 1", "-p", "oops")
    assert r.exit_code == 2 and "NAME=VALUE" in r.output
    r = run("sql", "--lake", fixture_lake.uri, "select 1", "--out", tmp_path / "x.xlsx")
    assert r.exit_code == 2 and "suffix" in r.output


def test_interactive_prompt(fixture_lake, tmp_path):
    history = tmp_path / "history"
    session = "\n".join(
        [
            ".tables",
            ".schema skill_lines",
            "select run_id,",
            "  count(*) as n from latest_skill_lines group by 1;",
            "select broken;",
            ".bogus",
            "select 'still here' as alive;",
            ".quit",
            "select 'not reached' as after;",
        ]
    )
    r = run(
        "sql",
        "--lake",
        fixture_lake.uri,
        "-i",
        input=session + "\n",
        env={"T2S_SQL_HISTORY": str(history)},
    )
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "tool_calls" in out and "latest_run" in out  # .tables
    assert "lesson_ids" in out and "lessons behind it" in out  # .schema with descriptions
    assert "r1" in out and "still here" in out and "not reached" not in out
    assert "broken" in r.stderr and "unknown command .bogus" in r.stderr
    saved = history.read_text()
    assert "select run_id, count(*) as n from latest_skill_lines group by 1;" in saved


def test_warehouse_command(fixture_lake, tmp_path):
    out = tmp_path / "w.duckdb"
    r = run("warehouse", "--lake", fixture_lake.uri, "--out", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    con = duckdb.connect(str(out), read_only=True)
    assert con.sql("select count(*) from lesson_facts").fetchall() == [(13,)]
    con.close()
    r = run("warehouse", "--lake", tmp_path / "nowhere")
    assert r.exit_code == 1 and "no lake at" in r.output


def test_coverage_command_prints_and_writes(fixture_lake, tmp_path):
    html = tmp_path / "r.html"
    r = run(
        "coverage",
        "--lake",
        fixture_lake.uri,
        "--where",
        fixture.HELD_OUT_WHERE,
        "--thin",
        2,
        "--html",
        html,
        "--out",
        tmp_path / "tables",
    )
    assert r.exit_code == 0, r.output
    assert "Failed runs covered" in r.stdout and "3/6" in r.stdout
    assert "re-distill" in r.stderr and html.as_uri() in r.stderr
    assert "no drop row says why" in r.stderr
    assert html.is_file() and (tmp_path / "tables" / "drift_lessons.parquet").is_file()


def test_coverage_json(fixture_lake, tmp_path):
    r = run("coverage", "--lake", fixture_lake.uri, "--run", "r0", "--json", "--no-html")
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["run"]["run_id"] == "r0" and payload["report"] is None
    assert payload["summary"]["failures_covered"] == 2
    assert {row["fate"] for row in payload["fate_summary"]} == {"merged", "deduplicated", "dropped"}


def test_coverage_default_report_sits_beside_the_skill(fixture_lake, skill_dir):
    r = run("coverage", "--lake", fixture_lake.uri, "--skill", skill_dir)
    assert r.exit_code == 0, r.output
    assert (Path(skill_dir).parent / "skill.report.html").is_file()  # named after the skill


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "x", "--against", "y"], "not both"),
        (["--run", "nope"], "no consolidation run 'nope'"),
        (["--where", "bad column"], "not a condition"),
        (["--against", "/no/such/lake"], "no lake at"),
    ],
)
def test_coverage_bad_options(fixture_lake, args, message):
    r = run("coverage", "--lake", fixture_lake.uri, "--no-html", *args)
    assert r.exit_code != 0 and message in r.output, r.output


def test_help_texts():
    for command in ("sql", "warehouse", "coverage"):
        r = run(command, "--help")
        assert r.exit_code == 0 and "--lake" in r.stdout
