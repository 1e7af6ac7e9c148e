"""Evaluation harness throughput: episodes over the real client against the loopback server.

Ours: `evaluate` playing every (model, skill, task) episode of the WikiTableQuestions sample's
test split (the scripted agent of the tests: a query, sometimes a failing one, then an answer),
written to a fresh lake. Reference, measured in the same run: the very same chat requests sent
through the model layer alone (`LLM.amap`, fresh cache), i.e. the limit the model calls set.
The ratio is the share of that limit the harness keeps (per-episode DuckDB, tools, scoring,
recording). Also: the scorer's rate on the sample's gold answers.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from pathlib import Path

from bench.run import Measurement
from pipeline.console import Console
from pipeline.evaluate import stages
from pipeline.evaluate.run import RunSettings
from pipeline.evaluate.skill import Skill
from pipeline.evaluate.wikitablequestions import scorer
from pipeline.lake import Lake
from pipeline.llm import LLM, ChatRequest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

CONCURRENCY = 16


def _episodes(size: str, workdir: Path) -> list[Measurement]:
    from loopback import Loopback

    from tests.evaluate.agents import WTQ, answer, write_skill

    n_models = 1 if size == "small" else 5
    models = [f"m{i}" for i in range(n_models)]
    skill = Skill.load(write_skill(workdir / "skill"))
    console = Console(0)
    with Loopback() as server:
        server.responder = answer
        lake = Lake(workdir / "lake")
        llms = {
            m: LLM(server.settings(model=m, concurrency=CONCURRENCY), lake=lake, console=console)
            for m in models
        }
        started = time.perf_counter()
        out = stages.evaluate(
            lake, WTQ, llms, split="test", skills=[skill],
            settings=RunSettings(concurrency=CONCURRENCY), console=console,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        episodes = int(out.arms["n_tasks"].sum())
        bodies = list(server.chat_requests)

        ref_lake = Lake(workdir / "ref-lake")
        llm = LLM(
            server.settings(model="ref", concurrency=CONCURRENCY), lake=ref_lake, console=console
        )
        requests = [
            ChatRequest(
                messages=b["messages"], tools=b.get("tools"), temperature=b.get("temperature"),
                seed=b.get("seed"), stage="bench",
            )
            for b in bodies
        ]  # fmt: skip
        t0 = time.perf_counter()
        asyncio.run(llm.amap(requests))
        ref_seconds = time.perf_counter() - t0
    calls_per_episode = len(bodies) / episodes
    return [
        Measurement(
            bench="evaluate",
            name="episodes per second",
            value=episodes / seconds,
            unit="episodes/s",
            reference_name="the same chat calls through LLM.amap alone",
            reference_value=episodes / ref_seconds,
            notes=f"{episodes} episodes, {len(bodies)} calls ({calls_per_episode:.2f} per episode), "
            f"loopback without latency, concurrency {CONCURRENCY}",
            details={"seconds": seconds, "reference_seconds": ref_seconds, "models": n_models},
        ),
        Measurement(
            bench="evaluate",
            name="harness time per episode",
            value=max(seconds - ref_seconds, 0.0) / episodes * 1000,
            unit="ms",
            notes="wall time beyond the model calls' own, per episode",
        ),
    ]


def _scorer(size: str) -> list[Measurement]:
    from tests.evaluate.agents import TASKS

    golds = [t.gold for t in TASKS.values()]
    rounds = 20 if size == "small" else 200
    started = time.perf_counter()
    n = 0
    for _ in range(rounds):
        for gold in golds:
            scorer.score(gold, gold)
            scorer.score(gold, ["wrong"])
            n += 2
    seconds = time.perf_counter() - started
    return [
        Measurement(
            bench="evaluate",
            name="scorer rate",
            value=n / seconds,
            unit="answers/s",
            notes=f"{len(golds)} gold answers of the sample, scored against themselves and a wrong one",
        )
    ]


def run(size: str, workdir: Path) -> list[Measurement]:
    measured = _episodes(size, workdir) + _scorer(size)
    # reference cycles still holding DuckDB cursors would otherwise outlive the run, and the
    # binding reports them as leaks at interpreter exit
    gc.collect()
    return measured
