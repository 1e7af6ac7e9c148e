"""Coverage on the demo lake, its figures recounted straight from the lake tables with polars."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.llm.embed import get_embedder
from pipeline.report.coverage import coverage

from . import demo

AIRLINE = pl.col("source") == "tau-bench-airline"
TASK = pl.col("task_id").cast(pl.Int64, strict=False)
# The runs each consolidation of demo.py was built from, as polars filters.
SCOPES = {
    "airline": AIRLINE,
    "hotpotqa": pl.col("source") == "reflexion-hotpotqa",
    "split": AIRLINE & (TASK < 35),
}
HELD_OUT = AIRLINE & (TASK >= 35)


@pytest.fixture(scope="module")
def tables(demo_lake) -> dict[str, pl.DataFrame]:
    lake = demo_lake.lake
    names = ["trajectories", "lessons", "skill_lines", "clusters", "cluster_members", "dropped"]
    return {name: lake.read(name) for name in names}


@pytest.fixture(scope="module")
def reports(demo_lake):
    runs = demo_lake.runs
    return {
        "airline": coverage(demo_lake.lake, run_id=runs["airline"]),
        "hotpotqa": coverage(demo_lake.lake, skill=demo_lake.skill("hotpotqa")),
        "split": coverage(demo_lake.lake, run_id=runs["split"], where=demo.HELD_OUT),
    }


def recount(t: dict[str, pl.DataFrame], run_id: str, scope: pl.Expr) -> dict:
    """The coverage figures of one run, from the tables alone."""
    runs = t["trajectories"].filter(scope)
    lines = t["skill_lines"].filter(pl.col("run_id") == run_id)
    kept = (
        t["clusters"].filter((pl.col("run_id") == run_id) & pl.col("kept"))["cluster_id"].to_list()
    )
    members = t["cluster_members"].filter(pl.col("run_id") == run_id)
    listed = lines.explode("cluster_ids")["cluster_ids"].drop_nulls().to_list()
    in_skill = set(lines.explode("lesson_ids")["lesson_ids"].drop_nulls()) | set(
        members.filter(pl.col("cluster_id").is_in(listed) & pl.col("cluster_id").is_in(kept))[
            "lesson_id"
        ]
    )
    dropped = set(t["dropped"].filter(pl.col("run_id") == run_id)["lesson_id"])
    read = set(members["lesson_id"]) | dropped
    lessons = t["lessons"].with_columns(in_skill=pl.col("lesson_id").is_in(list(in_skill)))
    per_run = runs.join(
        lessons.group_by("trajectory_id").agg(pl.col("in_skill").any()),
        on="trajectory_id",
        how="left",
    ).with_columns(pl.col("in_skill").fill_null(False))
    failed = per_run.filter(pl.col("outcome") == "failure")
    succeeded = per_run.filter(pl.col("outcome") == "success")
    # a consolidated statement: the lines sharing an item_id, on the distinct runs behind them
    behind = (
        lines.filter(pl.col("item_id").is_not_null())
        .explode("lesson_ids")
        .rename({"lesson_ids": "lesson_id"})
        .join(t["lessons"].select("lesson_id", "trajectory_id"), on="lesson_id")
    )
    support = behind.group_by("item_id").agg(pl.col("trajectory_id").n_unique().alias("n"))
    sections = behind.group_by("file", "section").agg(pl.col("trajectory_id").n_unique().alias("n"))
    return {
        "failures": failed.height,
        "failures_covered": int(failed["in_skill"].sum()),
        "successes": succeeded.height,
        "successes_covered": int(succeeded["in_skill"].sum()),
        "lessons_read": len(read),
        "lessons_dropped": len(dropped - in_skill),
        "lessons_unaccounted": len(read - in_skill - dropped),
        "statements": support.height,
        "statements_thin": support.filter(pl.col("n") < 3).height,
        "sections_thin": sections.filter(pl.col("n") < 3).height,
        "in_scope_lessons": lessons.join(runs, on="trajectory_id", how="semi").height,
        "read": read,
    }


@pytest.mark.parametrize("name", ["airline", "hotpotqa", "split"])
def test_figures_match_a_count_from_the_tables(name, demo_lake, tables, reports):
    cov = reports[name]
    scope = SCOPES[name] if name != "split" else SCOPES[name] & ~HELD_OUT
    want = recount(tables, demo_lake.runs[name], scope)
    got = cov.summary
    for key in (
        "failures",
        "failures_covered",
        "successes",
        "successes_covered",
        "lessons_read",
        "lessons_dropped",
        "lessons_unaccounted",
        "statements",
        "statements_thin",
        "sections_thin",
    ):
        assert got[key] == want[key], (name, key, got[key], want[key])
    assert got["lessons_unaccounted"] == 0
    assert set(cov.fate["lesson_id"]) == want["read"]
    # the consolidation read every lesson of the runs it was built from, and only those
    assert want["lessons_read"] == want["in_scope_lessons"] == cov.run["n_lessons"]
    assert got["statements_without_evidence"] == 0


def test_only_the_runs_a_skill_was_built_from_are_counted(reports):
    for name, source in (("hotpotqa", "reflexion-hotpotqa"), ("airline", "tau-bench-airline")):
        cov = reports[name]
        assert set(cov.trajectories["source"]) == {source}
        by_source = cov.by.filter(pl.col("dimension") == "source")
        assert set(by_source["value"]) == {source}
        assert cov.settings["scope"]["kind"] == "where"
    scope = reports["airline"].settings["scope"]
    assert (scope["n_trajectories"], scope["n_lake"]) == (200, 526)
    assert reports["split"].settings["scope"]["n_trajectories"] == 140


def test_every_uncovered_failure_lost_its_lessons_at_support(demo_lake, reports):
    """A failed run the skill does not cover had every lesson dropped, each for too little
    support (seen in one run): nothing else keeps a failure out of the demo skills."""
    for name, cov in reports.items():
        lost = cov.trajectories.filter((pl.col("outcome") == "failure") & ~pl.col("is_covered"))
        fates = cov.fate.join(lost.select("trajectory_id"), on="trajectory_id", how="semi")
        assert set(lost["status"]) <= {"dropped"}, name
        assert set(fates["fate"]) <= {"dropped"} and set(fates["dropped_stage"]) <= {"support"}
        assert fates["dropped_reason"].str.contains("below --min-support").all(), name
    assert (
        reports["airline"].summary["failures"] - reports["airline"].summary["failures_covered"] == 1
    )


def test_drift_on_the_held_out_tasks(demo_lake, tables, reports):
    d = reports["split"].drift
    run_id = demo_lake.runs["split"]
    runs = tables["trajectories"].filter(HELD_OUT)
    new = tables["lessons"].join(runs.select("trajectory_id"), on="trajectory_id", how="semi")
    assert d.summary["n_trajectories"] == runs.height and d.summary["n_lessons"] == new.height
    # the skill's lessons: members of kept clusters that a statement lists
    lines = tables["skill_lines"].filter(pl.col("run_id") == run_id)
    listed = lines.explode("cluster_ids")["cluster_ids"].drop_nulls().unique().to_list()
    kept = tables["clusters"].filter(
        (pl.col("run_id") == run_id) & pl.col("kept") & pl.col("cluster_id").is_in(listed)
    )
    targets = (
        tables["cluster_members"]
        .filter(
            (pl.col("run_id") == run_id) & pl.col("cluster_id").is_in(kept["cluster_id"].to_list())
        )
        .join(tables["lessons"], on="lesson_id")
        .select("target_section", "title")
        .unique()
    )
    embed = get_embedder("lexical").embed
    sims = embed(new["title"].to_list()) @ embed(targets["title"].to_list()).T
    same = np.array(
        [[a == b for b in targets["target_section"].str.to_lowercase()]
         for a in new["target_section"].str.to_lowercase()]
    )  # fmt: skip
    known = (np.where(same, sims, -1).max(axis=1) >= 0.9 - 1e-6).sum()
    assert d.summary["n_lessons_matched"] == known
    # realistic: the held-out tasks repeat most of what the skill says and add refund cases
    assert 0 < d.summary["n_lessons_matched"] < d.summary["n_lessons"]
    unknown = d.lessons.filter(~pl.col("is_matched"))
    assert unknown["title"].str.contains("send_certificate").any()
    assert d.summary["redistill"] == (d.summary["share_lessons_matched"] < 0.8)
    # an identical title is always known
    same_title = d.lessons.filter(pl.col("title") == pl.col("matched_title"))
    assert same_title.height > 0 and same_title["is_matched"].all()


def test_coverage_command_on_the_demo_lake(demo_lake):
    result = CliRunner().invoke(
        main,
        [
            "coverage",
            "--lake",
            demo_lake.lake.uri,
            "--skill",
            str(demo_lake.skill("split")),
            "--where",
            demo.HELD_OUT,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    s = payload["summary"]
    assert s["lessons_unaccounted"] == 0 and s["run_id"] == demo_lake.runs["split"]
    assert s["drift"]["n_trajectories"] == 60
    report = demo_lake.out / "airline-split.report.html"
    assert payload["report"] == str(report) and report.is_file()
    text = CliRunner().invoke(main, ["coverage", "--lake", demo_lake.lake.uri, "--no-html"])
    assert text.exit_code == 0, text.output
    assert "runs counted: 140 of the lake's 526" in text.output
    assert "unaccounted for: 0" in text.output
