"""Rows of a file: ids, outcomes from labels, and the batched schema check."""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.ingest.frames import build_frames, trajectory_id, validate_frames
from pipeline.ingest.labels import Labels
from pipeline.ingest.record import Run, StepBuilder

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def make_run(text: str, native: str | None = "n1", outcome: str | None = None) -> Run:
    b = StepBuilder()
    b.message("user", text, 0)
    b.call("t", {"a": 1}, "c", 1)
    b.result("c", "ok", 2)
    return Run(record="line 1", steps=b.steps, native_id=native, task_id="task", outcome=outcome)


def frames(*runs: Run, labels: Labels | None = None):
    return build_frames(
        runs, source="s", file="f", file_sha256="x", format="openai-chat", ingested_at=NOW,
        labels=labels,
    )  # fmt: skip


def test_ids_depend_on_source_native_id_and_content_only():
    a = make_run("hello")
    assert trajectory_id("s", a) == trajectory_id("s", make_run("hello", outcome="success"))
    assert trajectory_id("s", a) != trajectory_id("s2", a)
    assert trajectory_id("s", a) != trajectory_id("s", make_run("hello", native="n2"))
    assert trajectory_id("s", a) != trajectory_id("s", make_run("hello!"))
    assert trajectory_id("s", a) == "cd074f31295832859ca7"  # fixed: ids must not drift


def test_lengths_and_step_positions():
    f = frames(make_run("héllo"))
    s = f.steps.sort("step_idx")
    assert s["step_idx"].to_list() == [0, 1, 2]
    assert s["content_chars"].to_list() == [5, 0, 2]
    assert s["args_chars"].to_list() == [0, 7, 0]
    assert f.trajectories["n_steps"].to_list() == [3]


def test_labels_fill_only_unknown_outcomes():
    labels = Labels("l.csv", "sha", by_task={"task": ("failure", 0.0)})
    f = frames(make_run("a", outcome="success"), make_run("b", native="n2"), labels=labels)
    got = f.trajectories.select("outcome", "outcome_origin", "reward").rows()
    assert got == [("success", "source", None), ("failure", "labels", 0.0)]
    assert f.n_labelled == 1


def test_batched_check_names_the_file_at_fault():
    good, bad = frames(make_run("a")), frames(make_run("b"))
    bad.trajectories = bad.trajectories.with_columns(outcome=pl.lit("maybe"))
    problems = validate_frames([good, bad, frames(make_run("c"))])
    assert problems[0] is None and problems[2] is None
    assert "outcome" in problems[1] and "schema" in problems[1]
