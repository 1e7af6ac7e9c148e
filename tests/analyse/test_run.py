"""The map: resumable, incremental, one error row per failed trajectory, parts written as it goes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipeline.analyse.analyst import config_id
from pipeline.analyse.miner import MinerAnalyst
from pipeline.analyse.run import AnalyseError, analyse
from pipeline.lake import Lake
from pipeline.settings import ModelSettings
from tests.analyse import builders, domains
from tests.analyse.builders import call, user
from tests.scale.analysts import Failing


def fresh(tmp_path, name="lake") -> Lake:
    lake = Lake(tmp_path / name)
    builders.write(lake, domains.shop_runs() + domains.qa_runs())
    return lake


def extra_runs(n: int, prefix: str = "new") -> list[builders.Run]:
    return [
        builders.run(
            f"{prefix}{i}",
            "qa",
            "failure",
            [
                user("Question: who?"),
                call("Search", {"entity": "X"}, "X is Y."),
                call("Finish", {"answer": "Z"}, "Answer is INCORRECT"),
            ],
            task_id=f"{prefix}{i}",
            grader={"correct_answer": "Y"},
        )
        for i in range(n)
    ]


def test_second_run_does_no_work_and_new_runs_are_analysed_alone(tmp_path):
    lake = fresh(tmp_path)
    first = analyse(lake, batch_size=4)
    n = lake.read("trajectories").height
    assert (first.n_selected, first.n_analysed, first.n_skipped, first.n_failed) == (n, n, 0, 0)
    assert first.n_lessons == lake.read("lessons").height > 0
    parts = lake.parts("analyses")

    again = analyse(lake, batch_size=4)
    assert (again.n_analysed, again.n_skipped, again.n_lessons) == (0, n, 0)
    assert lake.parts("analyses") == parts

    builders.write(lake, extra_runs(10), part="p1")
    third = analyse(lake, batch_size=4)
    assert (third.n_analysed, third.n_skipped) == (10, n)
    done = lake.read("analyses")
    assert done.height == n + 10 and done["trajectory_id"].n_unique() == n + 10
    new = done.filter(pl.col("trajectory_id").str.starts_with("new"))
    assert new.height == 10 and (new["status"] == "ok").all()
    assert len(lake.parts("analyses")) == len(parts) + 3  # 10 new runs in batches of 4


def test_a_failing_trajectory_becomes_an_error_row_and_is_retried(tmp_path):
    lake = fresh(tmp_path)
    summary = analyse(lake, analyst=Failing({"f_args", "q_seen"}))
    assert summary.n_failed == 2 and summary.n_analysed == lake.read("trajectories").height - 2
    assert sorted(tid for tid, _ in summary.errors) == ["f_args", "q_seen"]
    assert "ValueError: cannot read f_args" in dict(summary.errors)["f_args"]
    rows = lake.read("analyses")
    errors = rows.filter(pl.col("status") == "error")
    assert (
        sorted(errors["trajectory_id"]) == ["f_args", "q_seen"] and (errors["n_lessons"] == 0).all()
    )
    assert (
        lake.read("lessons").filter(pl.col("trajectory_id").is_in(["f_args", "q_seen"])).height == 0
    )

    retry = analyse(lake)  # the plain miner: same configuration, the bug fixed
    assert (retry.n_analysed, retry.n_failed) == (2, 0)
    rows = lake.read("analyses")
    assert rows["analysis_id"].n_unique() == rows.height, "the retry's row replaces the error row"
    assert (rows["status"] == "ok").all()
    assert lake.read("lessons").filter(pl.col("trajectory_id") == "f_args").height > 0


# An analyse killed between a batch's lessons part and its analyses part (the done-marker).
KILLED_ANALYSE = """
import os, sys
from pipeline.analyse.run import analyse
from pipeline.lake import Lake
writes = {"analyses": 0}
real = Lake.write_part
def dying(self, name, df, **kw):
    if name == "analyses":
        writes["analyses"] += 1
        if writes["analyses"] == 3:
            os._exit(9)
    return real(self, name, df, **kw)
Lake.write_part = dying
analyse(Lake(sys.argv[1]), batch_size=5)
"""


def test_a_kill_loses_at_most_the_batch_in_flight(tmp_path):
    clean = fresh(tmp_path, "clean")
    analyse(clean, batch_size=5)
    lake = fresh(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    killed = subprocess.run([sys.executable, "-c", KILLED_ANALYSE, lake.uri], env=env)
    assert killed.returncode == 9
    assert len(lake.parts("analyses")) == 2 and len(lake.parts("lessons")) == 3
    assert lake.read("analyses").height == 10

    resumed = analyse(lake, batch_size=5)
    assert resumed.tidied["lessons parts without their analyses part"] == 1
    assert resumed.n_skipped == 10 and resumed.n_analysed == lake.read("trajectories").height - 10
    assert sorted(lake.read("lessons")["lesson_id"]) == sorted(clean.read("lessons")["lesson_id"])


def test_where_sample_and_limit(tmp_path):
    lake = fresh(tmp_path)
    only = analyse(lake, where="outcome = 'failure' and source = 'qa'")
    assert only.n_selected == 3
    assert set(lake.read("analyses")["trajectory_id"]) == {"q_extra", "q_seen", "q_halt"}

    a = fresh(tmp_path, "a")
    b = fresh(tmp_path, "b")
    sa = analyse(a, sample=5, seed=7)
    sb = analyse(b, sample=5, seed=7)
    assert sa.n_selected == sb.n_selected == 5
    assert sorted(a.read("analyses")["trajectory_id"]) == sorted(
        b.read("analyses")["trajectory_id"]
    )
    assert analyse(a, sample=5, seed=7).n_analysed == 0, "the same sample is already done"
    other = fresh(tmp_path, "c")
    analyse(other, sample=5, seed=8)
    assert sorted(other.read("analyses")["trajectory_id"]) != sorted(
        a.read("analyses")["trajectory_id"]
    )

    frac = fresh(tmp_path, "d")
    n = frac.read("trajectories").height
    assert analyse(frac, sample=0.5, seed=1).n_selected == round(n * 0.5)
    lim = fresh(tmp_path, "e")
    assert analyse(lim, limit=4).n_analysed == 4
    assert analyse(lim, limit=6).n_analysed == 2


def test_bad_requests_are_clear_errors(tmp_path):
    lake = fresh(tmp_path)
    with pytest.raises(AnalyseError, match="not a valid filter on trajectories"):
        analyse(lake, where="no_such_column = 1")
    with pytest.raises(AnalyseError, match="one filter expression"):
        analyse(lake, where="true; drop table x")
    with pytest.raises(AnalyseError, match="the single analyst needs a model: pass --model"):
        analyse(lake, analyst="single")
    with pytest.raises(AnalyseError, match="the agentic analyst needs a model"):
        analyse(lake, analyst="agentic", settings=ModelSettings(model="offline"))
    with pytest.raises(AnalyseError, match="runs offline"):
        analyse(lake, analyst="miner", model="gpt-4o")
    with pytest.raises(AnalyseError, match="max_turns is an option of the agentic analyst"):
        analyse(lake, options={"max_turns": 3})
    with pytest.raises(AnalyseError, match="unknown analyst 'oracle'"):
        analyse(lake, analyst="oracle")
    with pytest.raises(AnalyseError, match="--sample"):
        analyse(lake, sample=1.5)
    with pytest.raises(AnalyseError, match="holds no trajectories"):
        analyse(Lake(tmp_path / "empty"))
    assert not lake.exists("analyses"), "a refused run writes nothing"


def test_configuration_decides_what_is_done(tmp_path):
    lake = fresh(tmp_path)
    analyse(lake)
    skill = tmp_path / "SKILL.md"
    skill.write_text("# Shop\n\n## Placing orders\n\nPlace orders.\n")
    # Another base skill changes the miner's target sections: a new configuration, all redone.
    assert config_id(MinerAnalyst(base_skill=skill)) != config_id(MinerAnalyst())
    redo = analyse(lake, base_skill=skill)
    assert redo.n_skipped == 0 and redo.n_analysed == lake.read("trajectories").height
    assert lake.read("analyses")["config_id"].n_unique() == 2


def test_model_settings_and_analyst_options(tmp_path):
    lake = fresh(tmp_path)
    # Named explicitly, the offline miner runs whatever model the pipeline's settings name.
    done = analyse(lake, analyst="miner", settings=ModelSettings(model="gpt-4o"))
    assert done.n_failed == 0 and done.n_analysed == lake.read("trajectories").height
    other = fresh(tmp_path, "opts")
    capped = analyse(other, settings={"max_lessons": 1, "batch_size": 3})
    assert other.read("lessons").group_by("trajectory_id").len()["len"].max() == 1
    assert capped.config_id != done.config_id, "analyst options are part of the configuration"
    assert len(other.parts("analyses")) == -(-other.read("trajectories").height // 3)


def test_worker_processes_write_the_same_lessons(tmp_path):
    one = fresh(tmp_path, "one")
    two = fresh(tmp_path, "two")
    analyse(one, batch_size=4)
    summary = analyse(two, batch_size=4, workers=2)
    assert summary.n_failed == 0 and summary.n_analysed == two.read("trajectories").height
    assert sorted(two.read("lessons")["lesson_id"]) == sorted(one.read("lessons")["lesson_id"])
    assert sorted(p.rsplit("/", 1)[1] for p in two.parts("analyses")) == sorted(
        p.rsplit("/", 1)[1] for p in one.parts("analyses")
    )


def test_tidy_keeps_one_copy_of_a_lesson(tmp_path):
    from pipeline.analyse.tidy import tidy

    lake = fresh(tmp_path)
    analyse(lake, batch_size=100)
    [part] = lake.parts("lessons")
    name = part.rsplit("/part-", 1)[1].removesuffix(".parquet")
    copy = lake.read("lessons").head(5)
    lake.write_part("lessons", copy, part=name + "-copy")
    lake.write_part("analyses", lake.read("analyses").head(0), part=name + "-copy")
    assert lake.read("lessons").height == len(set(lake.read("lessons")["lesson_id"])) + 5
    assert tidy(lake)["duplicate lesson rows"] == 5
    lessons = lake.read("lessons")
    assert lessons.height == lessons["lesson_id"].n_unique()


def test_analyses_parts_from_before_the_model_columns_read_and_tidy(tmp_path):
    import pyarrow.parquet as pq

    lake = fresh(tmp_path)
    analyse(lake, analyst=Failing({"f_args"}))
    added = ["n_rejected", "rejected", "judged_outcome", "judge_reason", "judge_confidence"]
    for path in lake.parts("analyses"):  # as an older version wrote them
        pq.write_table(pq.read_table(path).drop_columns([*added, "n_tool_calls"]), path)
    n_parts = len(lake.parts("analyses"))
    retry = analyse(lake)  # the retry's row replaces the error row inside an old part
    assert (retry.n_analysed, retry.n_failed) == (1, 0)
    assert retry.tidied["parts upgraded to the current columns"] == n_parts
    rows = lake.read("analyses")
    assert rows["analysis_id"].n_unique() == rows.height and (rows["status"] == "ok").all()
    assert rows["judged_outcome"].null_count() == rows.height
    assert analyse(lake).tidied["parts upgraded to the current columns"] == 0
