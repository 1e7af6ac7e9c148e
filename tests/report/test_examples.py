"""Every example query runs on the fixture lake and gives its golden result, on the read-only
connection `trace2skill sql` queries."""

from pathlib import Path

import pytest

from pipeline import sql as sqlfiles
from pipeline.report import query

from . import golden

EXAMPLES = sorted(p.stem for p in (sqlfiles.SQL_DIR / "examples").glob("*.sql"))
PARAMS = {"skill_line_lineage": {"file": "SKILL.md", "line_no": 3}}
REQUIRED = {
    "top_failure_clusters",
    "lessons_per_tool",
    "failed_tasks_without_lesson",
    "skill_line_lineage",
    "cost_by_stage_model",
    "recoveries_per_tool",
    "runs_per_rule",
}


@pytest.fixture(scope="module")
def con(fixture_lake):
    con = query.connect(fixture_lake)
    yield con
    con.close()


def test_the_examples_are_all_there():
    assert REQUIRED <= set(EXAMPLES)


def test_every_golden_file_has_its_query():
    goldens = {p.stem for p in (golden.GOLDEN / "report" / "examples").glob("*.jsonl")}
    assert goldens == set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_matches_golden(con, name):
    text = sqlfiles.load(f"examples/{name}")
    assert text.startswith("-- ") and "parameters:" in text.split("\nwith", 1)[0]
    frame = sqlfiles.query(con, f"examples/{name}", **PARAMS.get(name, {}))
    assert frame.height > 0, (
        f"{name} returns nothing on the fixture lake: the golden would prove nothing"
    )
    golden.check(f"report/examples/{name}.jsonl", golden.rows_text(frame))


def test_lineage_of_another_line_and_of_no_line(con):
    rows = sqlfiles.query(con, "examples/skill_line_lineage", file="SKILL.md", line_no=6)
    assert rows.select("lesson_id", "trajectory_id", "via_statement", "via_cluster").rows() == [
        ("L3a", "T3", False, True)
    ]
    none = sqlfiles.query(con, "examples/skill_line_lineage", file="SKILL.md", line_no=4)
    assert none.height == 0  # a base line has no lessons behind it


def test_examples_run_from_the_command_line(fixture_lake, tmp_path: Path):
    from click.testing import CliRunner

    from pipeline.cli import main

    path = sqlfiles.SQL_DIR / "examples" / "skill_line_lineage.sql"
    result = CliRunner().invoke(
        main,
        [
            "sql",
            "--lake",
            fixture_lake.uri,
            "-f",
            str(path),
            "-p",
            "file=SKILL.md",
            "-p",
            "line_no=3",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("file,line_no,text") and len(lines) == 4
