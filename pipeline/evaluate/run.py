"""Rollout and eval: run arms (model x skill variant) over an environment's tasks into the lake.

``run_arms`` plays every (arm, task) episode, concurrently, and writes each batch of episodes of
an arm as one part of ``trajectories``, ``steps``, ``skill_usage`` and, last, ``eval_results``,
named after the evaluation, the arm and the batch. A batch is the executor's unit
(`pipeline.executor.run_async`: episodes overlap, batches are committed in order) and its
``eval_results`` part its done-marker: a rerun skips the batches already written (and plays again
those holding a faulted episode), and a crash loses at most the batches in flight; the parts such
a crash left without their marker are removed when the evaluation is run again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from pipeline import executor
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
    marker(lake).remove_abandoned(prefix=f"{eval_id}-")
    done = marker(lake).done()
    # a batch with a faulted episode is played again (answered calls come from the model cache)
    faulted = set(
        lake.scan("eval_results")
        .filter((pl.col("eval_id") == eval_id) & (pl.col("status") == "error"))
        .select("arm_id", "task_id")
        .collect()
        .iter_rows()
    )
    pending: list[tuple[Context, str, list[Task]]] = []
    for arm in arms:
        ctx = Context(eval_id, kind, env.name, split, source, arm)
        for b in range(0, len(tasks), BATCH):
            name = f"{eval_id}-{ctx.arm_id}-{b // BATCH:04d}"
            batch_tasks = tasks[b : b + BATCH]
            retry = any((ctx.arm_id, t.task_id) in faulted for t in batch_tasks)
            if retry or name not in done:
                pending.append((ctx, name, batch_tasks))
    skipped = len(arms) * len(tasks) - sum(len(t) for _, _, t in pending)
    if skipped:
        console.info(f"{skipped} episodes already in the lake for this evaluation: resuming")
    if faulted:
        console.info(f"{len(faulted)} faulted episodes: their batches are played again")
    width = max(1, settings.concurrency)
    gate = asyncio.Semaphore(width)
    total = sum(len(t) for _, _, t in pending)

    with console.progress(f"{kind}: episodes", total) as advance:

        async def one(ctx: Context, task: Task) -> tuple[Episode, Score]:
            async with gate:
                ep = await run_episode(
                    llms[ctx.arm.model], env, task, ctx.arm.skill, settings.agent, ctx.arm.model
                )
            advance()
            return ep, _score(env, ep)

        async def play(unit: tuple[Context, str, list[Task]]) -> list[tuple[Episode, Score]]:
            ctx, _, batch_tasks = unit
            return list(await asyncio.gather(*(one(ctx, t) for t in batch_tasks)))

        def commit(unit: tuple[Context, str, list[Task]], played) -> bool:
            ctx, name, _ = unit
            write_batch(lake, frames(played, ctx), name, ctx.source)
            return False

        try:
            # enough batches in flight to keep every slot busy while the first one finishes
            await executor.run_async(pending, play, commit, width=-(-width // BATCH) + 1)
        finally:
            # the clients' connections belong to this event loop; their call logs go to the lake
            for llm in llms.values():
                if hasattr(llm, "aclose"):
                    await llm.aclose()
    return total


def marker(lake: Lake) -> executor.Marker:
    """Rollout's and eval's resume: a batch is done when its `eval_results` part exists."""
    return executor.Marker(lake, "eval_results", ("trajectories", "steps", "skill_usage"))


def write_batch(lake: Lake, tables: dict[str, pl.DataFrame], part: str, source: str) -> None:
    """Trajectories, steps and skill usage first, results last: a results part marks the batch
    as done."""
    marker(lake).commit(
        part,
        tables["eval_results"],
        [
            ("trajectories", tables["trajectories"], {"source": source}),
            ("steps", tables["steps"], {"source": source}),
            ("skill_usage", tables["skill_usage"], None),
        ],
    )
