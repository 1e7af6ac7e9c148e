"""The demo data read end to end: the counts the sources themselves state."""

from __future__ import annotations

import json

import polars as pl
import pytest

from pipeline.ingest.run import EXIT_OK, ingest_paths
from pipeline.lake import Lake
from tests.conftest import DATA

TAU = DATA / "tau-bench-airline" / "gpt-4o-airline.json"
REACT = DATA / "reflexion-hotpotqa" / "100_questions_5_trials.txt"


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("demo") / "lake")
    summary = ingest_paths(lake, [TAU, REACT])
    assert summary.exit_code == EXIT_OK, summary.errors
    return lake


def test_tau_bench_runs_and_successes(demo_lake: Lake):
    t = demo_lake.read("trajectories").filter(pl.col("source") == "tau-bench-airline")
    assert t.height == 200
    assert t.filter(pl.col("outcome") == "success").height == 84
    assert set(t["outcome"]) == {"success", "failure"}
    assert set(t["model"]) == {"gpt-4o"}
    assert t["task_id"].n_unique() == 50
    assert (t["format"] == "tau-bench").all() and (t["outcome_origin"] == "source").all()


def test_tau_bench_grader_view_is_kept_apart(demo_lake: Lake):
    t = demo_lake.read("trajectories").filter(pl.col("source") == "tau-bench-airline")
    meta = json.loads(t.filter(pl.col("native_id") == "0-0")["meta"][0])
    assert meta["trial"] == 0 and meta["domain"] == "airline"
    assert "instruction" in meta["grader"]["task"] and meta["grader"]["task"]["actions"]
    assert "reward_info" in meta["grader"]
    # The hidden goal never reaches a step the agent saw.
    steps = demo_lake.read("steps").filter(pl.col("trajectory_id") == t["trajectory_id"][0])
    assert (
        not steps["content"].str.contains(meta["grader"]["task"]["instruction"], literal=True).any()
    )


def test_tau_bench_steps_link_calls_and_results(demo_lake: Lake):
    s = demo_lake.read("steps").filter(pl.col("source") == "tau-bench-airline")
    assert s.height == 5308  # one step per message: every assistant message holds <= 1 call
    calls = s.filter(pl.col("kind") == "tool_call")
    results = s.filter(pl.col("kind") == "tool_result")
    assert calls.height == results.height == 1164
    # Ids are unique within a run although the source reuses some.
    assert calls.group_by("trajectory_id", "tool_call_id").len()["len"].max() == 1
    assert calls["tool_call_id"].str.contains("#", literal=True).any()
    joined = results.join(
        calls.select("trajectory_id", "tool_call_id", pl.col("step_idx").alias("call_idx"),
                     pl.col("tool_name").alias("call_name")),
        on=["trajectory_id", "tool_call_id"], how="left",
    )  # fmt: skip
    assert joined["call_idx"].null_count() == 0
    assert (joined["call_idx"] == joined["call_step_idx"]).all()
    assert (joined["call_idx"] < joined["step_idx"]).all()
    assert (joined["call_name"] == joined["tool_name"]).all()
    assert results.filter(pl.col("is_error")).height == 73
    assert results.filter(pl.col("is_error"))["content"].str.starts_with("Error").all()
    assert not results.filter(pl.col("tool_name") == "think")["is_error"].any()


def test_react_runs_match_the_trial_summaries(demo_lake: Lake):
    t = demo_lake.read("trajectories").filter(pl.col("source") == "reflexion-hotpotqa")
    # 498 printed runs, 172 of them reprints of solved runs from an earlier trial.
    assert t.height == 326
    assert t.filter(pl.col("outcome") == "success").height == 51  # solved by trial 5
    meta = (
        t["meta"]
        .str.json_decode(pl.Struct({"trial": pl.Int64, "section": pl.String, "halted": pl.Boolean}))
        .struct.unnest()
    )
    per_trial = meta.group_by("trial", "section").len().sort("trial", "section")
    halted = per_trial.filter(pl.col("section") == "HALTED").sort("trial")["len"].to_list()
    assert halted == [17, 14, 11, 11, 13]  # halted runs are never reprinted
    correct = per_trial.filter(pl.col("section") == "CORRECT").sort("trial")["len"].to_list()
    assert correct == [32, 10, 6, 2, 1]  # new solutions per trial: 32, 42-32, 48-42, ...
    assert t["task_id"].n_unique() == 100
    assert t["model"].null_count() == t.height


def test_react_steps_and_grader(demo_lake: Lake):
    t = demo_lake.read("trajectories").filter(pl.col("source") == "reflexion-hotpotqa")
    s = demo_lake.read("steps").filter(pl.col("source") == "reflexion-hotpotqa")
    assert set(s["tool_name"].drop_nulls()) >= {"Search", "Lookup", "Finish"}
    errors = s.filter(pl.col("is_error"))["content"]
    assert errors.str.contains(r"^(Could not find|No Results|Invalid Action|The last page)").all()
    assert errors.len() > 100
    # Multi-line observations are kept whole.
    assert s.filter(pl.col("kind") == "tool_result")["content"].str.contains("\n").any()
    meta = json.loads(t["meta"][0])
    assert "correct_answer" in meta["grader"]
    assert not s["content"].str.contains("Correct answer:", literal=True).any()


def test_reingest_adds_nothing(demo_lake: Lake):
    before = demo_lake.read("trajectories").height, demo_lake.read("steps").height
    summary = ingest_paths(demo_lake, [TAU, REACT])
    assert [f.status for f in summary.files] == ["unchanged", "unchanged"]
    assert (demo_lake.read("trajectories").height, demo_lake.read("steps").height) == before
    assert summary.n_trajectories == 526
