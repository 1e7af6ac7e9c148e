"""The whole loop on the shipped WikiTableQuestions sample, over HTTP with the real client:
rollout (a small model, train split) -> analyse -> consolidate -> eval (a large model, test split).
The scripted agent (``agents.answer``) queries the table, errs on some tasks and recovers, and is
right on two tasks in three; with a skill loaded it is right everywhere."""

from __future__ import annotations

import polars as pl

from pipeline.console import Console
from pipeline.evaluate import stages
from pipeline.evaluate.skill import Skill
from pipeline.llm import LLM
from tests.evaluate.agents import WTQ, answer


def test_rollout_distill_eval(loopback, lake, tmp_path):
    from pipeline.analyse.run import analyse
    from pipeline.consolidate.run import consolidate

    loopback.responder = answer
    console = Console(0)
    small = LLM(loopback.settings(model="small"), lake=lake, console=console)
    rolled = stages.rollout(lake, WTQ, small, model="small", split="train", console=console)
    assert rolled.played == 60
    assert set(lake.read("trajectories")["outcome"]) == {"success", "failure"}

    summary = analyse(lake, analyst="miner", where="source = 'wtq-train'", console=console)
    assert summary.n_analysed == 60 and summary.n_lessons > 0
    out = tmp_path / "skill"
    consolidate(lake, out_dir=out, console=console)
    skill = Skill.load(out)
    assert skill.sections()

    large = LLM(loopback.settings(model="large"), lake=lake, console=console)
    result = stages.evaluate(
        lake, WTQ, {"large": large}, split="test", skills=[skill], console=console
    )
    arms = {r["role"]: r for r in result.arms.iter_rows(named=True)}
    assert arms["candidate"]["accuracy"] == 1.0 > arms["baseline"]["accuracy"]
    assert result.comparisons.filter(pl.col("kind") == "vs_baseline").item(0, "ci_low") > 0
