"""The whole loop on the shipped WikiTableQuestions sample: rollout -> analyse -> consolidate
-> eval, with a scripted agent that queries the table, sometimes errs, and answers right on some
tasks and wrong on others."""

from __future__ import annotations

import zlib

import polars as pl
import pytest

from pipeline.console import Console
from pipeline.evaluate import stages
from pipeline.evaluate.skill import Skill
from pipeline.evaluate.wikitablequestions.env import WikiTableQuestions
from tests.evaluate.fakes import FakeLLM, tool_call

WTQ = WikiTableQuestions()
GOLD = {t.task_id: t.gold for split in ("train", "test") for t in WTQ.tasks(split)}


def agent(request):
    """Right on two tasks in three; on the others it first queries a column that does not
    exist, recovers, and submits a wrong answer. With a skill loaded, it is right everywhere."""
    tools_seen = [m for m in request.messages if m["role"] == "tool"]
    right = (
        zlib.crc32(request.tag.encode()) % 3 != 0 or "# Skill:" in request.messages[0]["content"]
    )
    if not tools_seen:
        query = "select count(*) from t" if right else "select missing_column from t"
        return {
            "content": "Let me query the table.",
            "tool_calls": [tool_call("sql", {"query": query})],
        }
    if not right and len(tools_seen) == 1:
        return {"tool_calls": [tool_call("sql", {"query": "select * from t limit 3"}, "c2")]}
    answer = GOLD[request.tag] if right else ["wrong"]
    return {"tool_calls": [tool_call("submit", {"answer": answer}, "c9")]}


@pytest.mark.xfail(
    raises=ImportError, reason="analyse and consolidate are not on main yet", strict=False
)
def test_rollout_distill_eval(lake, tmp_path):
    from pipeline.analyse.run import analyse
    from pipeline.consolidate.run import consolidate

    console = Console(0)
    rolled = stages.rollout(
        lake, WTQ, FakeLLM(agent), model="small", split="train", console=console
    )
    assert rolled.played == 60
    assert set(lake.read("trajectories")["outcome"]) == {"success", "failure"}

    summary = analyse(lake, analyst="miner", where="source = 'wtq-train'", console=console)
    assert summary.n_analysed == 60 and summary.n_lessons > 0
    out = tmp_path / "skill"
    consolidate(lake, out_dir=out, console=console)
    skill = Skill.load(out)
    assert skill.sections()

    result = stages.evaluate(
        lake, WTQ, {"large": FakeLLM(agent)}, split="test", skills=[skill], console=console
    )
    arms = {r["role"]: r for r in result.arms.iter_rows(named=True)}
    assert arms["candidate"]["accuracy"] == 1.0 > arms["baseline"]["accuracy"]
    assert result.comparisons.filter(pl.col("kind") == "vs_baseline").item(0, "ci_low") > 0
