"""Contrastive mining end to end: coding runs with planted behaviour effects (several attempts
per task, outcome labels only) through ingest, the command parser and the contrasts; the miner's
lessons and the offline skill state the figures and name only programs the runs executed."""

from __future__ import annotations

import re

import polars as pl
import pytest

from pipeline import sql
from pipeline.analyse.behaviour import ContrastSettings, measure
from pipeline.analyse.behaviour.contrasts import contrast_table
from pipeline.analyse.behaviour.words import Wording
from pipeline.analyse.run import analyse
from pipeline.consolidate.run import consolidate
from pipeline.ingest.run import ingest_paths
from pipeline.ingest.synth import swebench, write_synthetic
from pipeline.lake import Lake

SOURCE = "swebench"
TASKS = 120


def feature_name(behaviour: str) -> str:
    """The synthetic family's behaviour names, as the features table names them."""
    return "used:" + behaviour.removeprefix("used_") if behaviour.startswith("used_") else behaviour


@pytest.fixture(scope="module")
def planted_lake(tmp_path_factory) -> Lake:
    root = tmp_path_factory.mktemp("planted")
    write_synthetic(
        root / "raw", TASKS * swebench.RUNS_PER_TASK, format="mini-swe-agent", seed=5,
        family="swebench", jobs=1,
    )  # fmt: skip
    lake = Lake(root / "lake")
    ingest_paths(lake, [root / "raw"], source=SOURCE, jobs=1)
    analyse(lake, workers=1)
    return lake


@pytest.fixture(scope="module")
def contrasts(planted_lake) -> pl.DataFrame:
    return planted_lake.read("contrasts").filter(pl.col("source") == SOURCE)


def test_the_planted_effects_are_found_with_their_sign(contrasts):
    for behaviour, sign in swebench.PLANTED.items():
        if sign == 0:
            continue
        row = contrasts.filter(pl.col("feature") == feature_name(behaviour)).row(0, named=True)
        assert row["is_finding"], row
        assert row["estimate"] == "within_task"
        assert (row["within_diff"] > 0) == (sign > 0), row
        assert (row["within_ci_low"] > 0) if sign > 0 else (row["within_ci_high"] < 0), row


def test_no_null_behaviour_is_a_finding_not_even_the_one_confounded_with_difficulty(contrasts):
    nulls = [b for b, sign in swebench.PLANTED.items() if sign == 0]
    assert swebench.CONFOUNDED <= set(nulls)
    for behaviour in nulls:
        row = contrasts.filter(pl.col("feature") == feature_name(behaviour)).row(0, named=True)
        assert not row["is_finding"], row
    # The confounded one does look harmful when tasks are pooled: only the within-task
    # comparison clears it.
    (confounded,) = swebench.CONFOUNDED
    row = contrasts.filter(pl.col("feature") == feature_name(confounded)).row(0, named=True)
    assert row["ci_high"] < 0 and row["p_value"] < 0.01, row
    assert row["within_ci_low"] < 0 < row["within_ci_high"], row


def test_pooled_estimate_decides_where_tasks_do_not_repeat(contrasts):
    counts = pl.DataFrame(
        {
            "source": ["s"] * 4,
            "feature": ["tested_after_last_edit"] * 4,
            "task_id": ["a", "b", "c", "d"],
            "n_with": [10, 10, 10, 10],
            "success_with": [8, 7, 8, 9],
            "n_without": [10, 10, 10, 10],
            "success_without": [3, 4, 2, 3],
        }
    )
    wording = Wording(pl.DataFrame(schema=["source", "family", "program", "is_tool"]))
    settings = ContrastSettings()
    pooled = contrast_table(counts, wording, settings).row(0, named=True)
    assert pooled["estimate"] == "pooled" and pooled["is_finding"]
    assert pooled["phrase"] == "ran the tests after their last edit"
    within = contrast_table(counts, wording, settings, {"s"}).row(0, named=True)
    # four tasks are fewer than min_tasks: a source whose tasks repeat is not tested on them
    assert within["estimate"] == "within_task" and within["q_value"] is None
    assert not within["is_finding"]


def test_actions_split_commands_into_programs_and_families(planted_lake):
    con = sql.connect(planted_lake)
    rows = con.sql(
        "select family, count(distinct program) n, list(distinct program order by program) p "
        "from actions group by family order by family"
    ).pl()
    by_family = dict(zip(rows["family"], rows["p"], strict=True))
    assert "pytest" in by_family["test"]
    assert {"grep", "find"} <= set(by_family["search"])
    assert "sed" in by_family["edit"]
    assert "python" in by_family["script"]
    # the prose of the reproduction script's heredoc is not a program
    assert not con.sql(
        "select 1 from actions where program in ('import', 'print', 'def')"
    ).fetchall()
    con.close()


def test_rerunning_analyse_parses_nothing_again(planted_lake):
    before = planted_lake.parts("actions")
    analyse(planted_lake, workers=1)
    assert planted_lake.parts("actions") == before


def test_lessons_and_skill_state_the_figures_and_name_only_programs_the_runs_executed(
    planted_lake, tmp_path
):
    lessons = planted_lake.read("lessons").filter(pl.col("rule") == "contrast")
    assert lessons.height > 0
    text = lessons.get_column("content").to_list()
    assert all(re.search(r"succeeded in \d+% of cases \(\d+ runs\) against \d+%", t) for t in text)
    out = tmp_path / "swe-fixes"
    consolidate(planted_lake, out_dir=out)
    skill = (out / "SKILL.md").read_text()
    assert "Runs that ran the tests after their last edit succeeded more often" in skill
    assert "Runs that edited or created test files succeeded less often" in skill
    programs = set(planted_lake.read("actions").get_column("program").unique().to_list())
    statements = [line for line in skill.splitlines() if line.startswith("- ")]
    # the programs behind a family, "(grep, find)", and the commands quoted, "bash `sed`"
    named = {
        name
        for line in statements
        if line.startswith("- Runs that ")
        for group in re.findall(r"\(([a-z0-9_.+-]+(?:, [a-z0-9_.+-]+)*)\)", line)
        for name in group.split(", ")
    }
    named |= {quoted.split()[0] for line in statements for quoted in re.findall(r"`([^`]+)`", line)}
    assert named, "the skill names the programs behind its families"
    assert named <= programs, named - programs


def test_measure_on_a_lake_without_outcomes_finds_nothing(tmp_path):
    lake = Lake(tmp_path / "lake")
    con = sql.connect(lake)
    behaviour = measure(con)
    assert behaviour.contrasts.height == 0
    con.close()
