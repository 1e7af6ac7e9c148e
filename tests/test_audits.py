"""Audits find the rows that break a table's rule, and only those: each is shown a lake where it
must find something, and the stages' own output passes them all (`test_stages.py`)."""

from __future__ import annotations

import polars as pl
from click.testing import CliRunner

from pipeline import audits, schemas
from pipeline.cli import main
from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.stages import BY_NAME
from tests.analyse import builders, domains


def _lake(tmp_path) -> Lake:
    lake = Lake(tmp_path / "lake")
    builders.write(lake, domains.shop_runs())
    return lake


def test_every_audit_names_tables_that_exist_and_a_stage_writes():
    catalogue = audits.catalogue()
    assert len(catalogue) >= 5
    writes = {t for s in BY_NAME.values() for t in s.writes}
    for name, tables in catalogue.items():
        assert tables and set(tables) <= set(schemas.REGISTRY), name
        assert set(tables) & writes, name


def test_a_clean_lake_passes_and_broken_rows_are_found(tmp_path):
    lake = _lake(tmp_path)
    assert audits.run(lake, ("trajectories", "steps")) == []
    trajectories = lake.read("trajectories")
    one = trajectories["trajectory_id"][0]
    steps = lake.read("steps").filter(pl.col("trajectory_id") == one)
    source = steps["source"][0]
    # a second copy of one run's steps under another run id: orphaned, and counted for nobody
    orphan = steps.with_columns(pl.lit("no-such-run").alias("trajectory_id"))
    lake.write_part("steps", orphan, part="orphan", partition={"source": source})
    found = {f.audit: f.rows for f in audits.run(lake, ("steps",))}
    assert set(found) == {"audit_steps_without_trajectory"}
    assert found["audit_steps_without_trajectory"]["trajectory_id"].to_list() == ["no-such-run"]
    # a run that claims one step more than it has
    wrong = trajectories.filter(pl.col("trajectory_id") == one).with_columns(pl.col("n_steps") + 1)
    lake.write_part("trajectories", wrong, part="wrong", partition={"source": source})
    found = {f.audit: f.rows for f in audits.run(lake, ("trajectories",))}
    assert "audit_trajectories_step_count" in found


def test_lessons_without_an_ok_analysis_are_found_and_warned_of(tmp_path, capsys, monkeypatch):
    from pipeline.analyse.run import analyse

    lake = _lake(tmp_path)
    analyse(lake)
    assert audits.run(lake, ("lessons", "analyses")) == []
    lessons = lake.read("lessons").head(2)
    stray = lessons.with_columns(
        pl.lit("no-analysis").alias("analysis_id"), (pl.col("lesson_id") + "-x").alias("lesson_id")
    )
    lake.write_part("lessons", stray, part="stray")
    analyses = lake.read("analyses").head(1)
    lake.write_part("analyses", analyses, part="again")
    assert audits.after(lake, "analyse", Console(1)) == []  # only when asked: T2S_AUDIT=1
    monkeypatch.setenv("T2S_AUDIT", "1")
    findings = audits.after(lake, "analyse", Console(1))
    assert {f.audit: f.rows.height for f in findings} == {
        "audit_lessons_without_analysis": 2,
        "audit_analyses_one_per_run": 1,
    }
    assert (
        "audit audit_lessons_without_analysis found 2 row(s) after analyse"
        in capsys.readouterr().err
    )

    result = CliRunner().invoke(main, ["audit", "--lake", lake.uri, "--stage", "analyse", "--show"])
    assert result.exit_code == 1
    assert "audit_lessons_without_analysis: 2 row(s)" in result.output
    assert "no-analysis" in result.output
    clean = _lake(tmp_path / "other")
    result = CliRunner().invoke(main, ["audit", "--lake", clean.uri])
    assert result.exit_code == 0 and "audit_steps_without_trajectory: ok" in result.output
