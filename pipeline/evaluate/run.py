"""Rollout and eval: run arms (model x skill variant) over an environment's tasks into the lake.

``run_arms`` plays every (arm, task) episode, concurrently, and writes each batch of episodes of
an arm as one part of ``trajectories``, ``steps``, ``eval_results`` and ``skill_usage``, named
after the evaluation, the arm and the batch: a rerun skips the batches already written (and plays
again those holding a faulted episode), and a crash loses at most the batches in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from pipeline.console import Console
from pipeline.evaluate import stats
from pipeline.evaluate.agent import PROMPT_VERSION, AgentSettings, Episode, run_episode
from pipeline.evaluate.env import Environment, Score, Task
from pipeline.evaluate.record import Arm, Context, frames
from pipeline.evaluate.summary import source_name
from pipeline.ids import digest
from pipeline.lake import Lake

BATCH = 25  # episodes per written part


@dataclass(frozen=True)
class RunSettings:
    agent: AgentSettings = AgentSettings()
    concurrency: int = 8
    resamples: int = stats.RESAMPLES
    seed: int = 0  # the task sample and the bootstrap (the model's seed is agent.seed)


def eval_id_of(
    kind: str,
    env: Environment,
    split: str,
    tasks: list[Task],
    arms: list[Arm],
    agent: AgentSettings,
) -> str:
    return digest(
        "eval",
        kind,
        env.name,
        env.system_prompt,
        split,
        [t.task_id for t in tasks],
        [(a.role, a.label, a.model, a.skill and a.skill.digest) for a in arms],
        [agent.max_turns, agent.temperature, agent.seed],
        PROMPT_VERSION,
    )


def _score(env: Environment, ep: Episode) -> Score:
    if ep.status == "error":
        return Score(False, 0.0, ep.error or "error")
    try:
        return env.score(ep.task, ep.answer)
    except Exception as exc:  # a scorer fault is recorded on the episode, the batch goes on
        ep.status, ep.error = "error", f"scorer failed: {type(exc).__name__}: {exc}"
        return Score(False, 0.0, ep.error)


async def run_arms(
    lake: Lake,
    env: Environment,
    tasks: list[Task],
    arms: list[Arm],
    llms: Mapping[str, object],
    *,
    eval_id: str,
    kind: str,
    split: str,
    settings: RunSettings,
    console: Console,
) -> int:
    """Play every pending episode; returns how many were played (batches on disk are skipped)."""
    source = source_name(env, split)
    done = {p.rsplit("/", 1)[-1] for p in lake.parts("eval_results")}
    # a batch with a faulted episode is played again (answered calls come from the model cache)
    faulted = set(
        lake.scan("eval_results")
        .filter((pl.col("eval_id") == eval_id) & (pl.col("status") == "error"))
        .select("arm_id", "task_id")
        .collect()
        .iter_rows()
    )
    pending: list[tuple[Context, int, list[Task]]] = []
    for arm in arms:
        ctx = Context(eval_id, kind, env.name, split, source, arm)
        for b in range(0, len(tasks), BATCH):
            name = f"{eval_id}-{ctx.arm_id}-{b // BATCH:04d}"
            batch_tasks = tasks[b : b + BATCH]
            retry = any((ctx.arm_id, t.task_id) in faulted for t in batch_tasks)
            if retry or f"part-{name}.parquet" not in done:
                pending.append((ctx, b // BATCH, batch_tasks))
    skipped = len(arms) * len(tasks) - sum(len(t) for _, _, t in pending)
    if skipped:
        console.info(f"{skipped} episodes already in the lake for this evaluation: resuming")
    if faulted:
        console.info(f"{len(faulted)} faulted episodes: their batches are played again")
    gate = asyncio.Semaphore(max(1, settings.concurrency))
    total = sum(len(t) for _, _, t in pending)

    with console.progress(f"{kind}: episodes", total) as advance:

        async def one(ctx: Context, task: Task) -> tuple[Episode, Score]:
            async with gate:
                ep = await run_episode(
                    llms[ctx.arm.model], env, task, ctx.arm.skill, settings.agent, ctx.arm.model
                )
            advance()
            return ep, _score(env, ep)

        async def batch(ctx: Context, number: int, batch_tasks: list[Task]) -> None:
            played = await asyncio.gather(*(one(ctx, t) for t in batch_tasks))
            write_batch(
                lake, frames(list(played), ctx), f"{eval_id}-{ctx.arm_id}-{number:04d}", ctx.source
            )

        try:
            await asyncio.gather(*(batch(ctx, n, t) for ctx, n, t in pending))
        finally:
            # the clients' connections belong to this event loop; their call logs go to the lake
            for llm in llms.values():
                if hasattr(llm, "aclose"):
                    await llm.aclose()
    return total


def write_batch(lake: Lake, tables: dict[str, pl.DataFrame], part: str, source: str) -> None:
    """Trajectories first, results last: a results part marks the batch as done."""
    lake.write_part("trajectories", tables["trajectories"], part=part, partition={"source": source})
    lake.write_part("steps", tables["steps"], part=part, partition={"source": source})
    lake.write_part("skill_usage", tables["skill_usage"], part=part)
    lake.write_part("eval_results", tables["eval_results"], part=part)
