"""Rollout and eval: run arms (model x skill variant) over an environment's tasks into the lake.

``run_arms`` plays every (arm, task) episode, concurrently, and writes each batch of episodes of
an arm as one part of ``trajectories``, ``steps``, ``eval_results`` and ``skill_usage``, named
after the evaluation, the arm and the batch: a rerun skips the batches already written, and a
crash loses at most the batches in flight. ``summarise`` turns ``eval_results`` into
``eval_arms`` and ``eval_comparisons`` (paired bootstrap intervals).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline import schemas, sql
from pipeline.console import Console
from pipeline.evaluate import stats
from pipeline.evaluate.agent import PROMPT_VERSION, AgentSettings, Episode, run_episode
from pipeline.evaluate.env import Environment, Score, Task
from pipeline.evaluate.record import Arm, Context, frames
from pipeline.ids import digest
from pipeline.lake import Lake

BATCH = 25  # episodes per written part


@dataclass(frozen=True)
class RunSettings:
    agent: AgentSettings = AgentSettings()
    concurrency: int = 8
    resamples: int = stats.RESAMPLES


def source_name(env: Environment, split: str) -> str:
    return f"{env.name}-{split}"


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

        await asyncio.gather(*(batch(ctx, n, t) for ctx, n, t in pending))
    return total


def write_batch(lake: Lake, tables: dict[str, pl.DataFrame], part: str, source: str) -> None:
    """Trajectories first, results last: a results part marks the batch as done."""
    lake.write_part("trajectories", tables["trajectories"], part=part, partition={"source": source})
    lake.write_part("steps", tables["steps"], part=part, partition={"source": source})
    lake.write_part("skill_usage", tables["skill_usage"], part=part)
    lake.write_part("eval_results", tables["eval_results"], part=part)


# -- summaries ---------------------------------------------------------------------------------


def summarise(
    lake: Lake, eval_id: str, arms: list[Arm], *, resamples: int, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(eval_arms, eval_comparisons) of one evaluation, from its eval_results in the lake."""
    con = sql.connect(lake)
    totals = sql.query(con, "eval_arm_totals", eval_id=eval_id)
    outcomes = sql.query(con, "eval_outcomes", eval_id=eval_id)
    con.close()
    ids = {a.arm_id(eval_id): a for a in arms}
    matrix = outcomes.pivot(on="arm_id", index="task_id", values="correct").sort("task_id")

    def column(arm_id: str) -> np.ndarray:
        if arm_id not in matrix.columns:
            return np.zeros(0)
        return matrix.get_column(arm_id).fill_null(False).cast(pl.Float64).to_numpy()

    rows = []
    for t in totals.iter_rows(named=True):
        arm = ids[t["arm_id"]]
        ci = stats.accuracy(column(t["arm_id"]), resamples=resamples, seed=seed)
        rows.append(
            {
                "eval_id": eval_id,
                **t,
                "role": arm.role,
                "label": arm.label,
                "model": arm.model,
                "skill_name": arm.skill and arm.skill.name,
                "skill_dir": arm.skill and arm.skill.root,
                "skill_digest": arm.skill and arm.skill.digest,
                "variant": arm.variant,
                "ablated": arm.ablated,
                "accuracy": t["n_correct"] / t["n_tasks"] if t["n_tasks"] else 0.0,
                "ci_low": ci.low,
                "ci_high": ci.high,
            }
        )
    arm_frame = schemas.validate(
        "eval_arms", pl.DataFrame(rows, schema=schemas.table("eval_arms").columns)
    ).sort("model", "role", "label")
    comparisons = []
    for kind, arm, ref in pairs(arms):
        p = stats.paired(
            column(arm.arm_id(eval_id)), column(ref.arm_id(eval_id)), resamples=resamples, seed=seed
        )
        comparisons.append(
            {
                "eval_id": eval_id,
                "model": arm.model,
                "kind": kind,
                "arm_id": arm.arm_id(eval_id),
                "reference_arm_id": ref.arm_id(eval_id),
                "label": arm.label,
                "reference_label": ref.label,
                "unit": ref.ablated if kind == "ablation" else None,
                "n_paired": p.n,
                "accuracy": p.accuracy,
                "reference_accuracy": p.reference_accuracy,
                "delta": p.delta.estimate,
                "ci_low": p.delta.low,
                "ci_high": p.delta.high,
                "p_not_better": p.p_not_better,
                "wins": p.wins,
                "losses": p.losses,
                "rank": None,
            }
        )
    cmp_frame = pl.DataFrame(comparisons, schema=schemas.table("eval_comparisons").columns)
    ranked = (
        cmp_frame.filter(pl.col("kind") == "ablation")
        .sort("model", "delta", "unit", descending=[False, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("model").cast(pl.Int64))
    )
    cmp_frame = pl.concat([cmp_frame.filter(pl.col("kind") != "ablation"), ranked])
    return arm_frame, schemas.validate("eval_comparisons", cmp_frame)


def pairs(arms: list[Arm]) -> list[tuple[str, Arm, Arm]]:
    """Which arms are compared: skills vs the baseline, candidate vs incumbent, full vs ablated."""
    out = []
    for model in dict.fromkeys(a.model for a in arms):
        mine = [a for a in arms if a.model == model]
        baseline = next((a for a in mine if a.role == "baseline"), None)
        incumbent = next((a for a in mine if a.role == "incumbent"), None)
        candidates = [a for a in mine if a.role == "candidate"]
        if baseline:
            out += [
                ("vs_baseline", a, baseline)
                for a in candidates + ([incumbent] if incumbent else [])
            ]
        if incumbent:
            out += [("vs_incumbent", a, incumbent) for a in candidates]
        for a in mine:
            if a.role == "ablation":
                full = next(c for c in candidates if c.skill and c.skill.root == a.skill.root)
                out.append(("ablation", full, a))
    return out


def guard(comparisons: pl.DataFrame, margin: float) -> tuple[str | None, str | None]:
    """(verdict, reason): refuse when the candidate trails the incumbent by more than ``margin``."""
    rows = comparisons.filter(pl.col("kind") == "vs_incumbent").sort("model").to_dicts()
    if not rows:
        return None, None
    lines, worse = [], False
    for r in rows:
        bad = r["delta"] < -margin
        worse |= bad
        lines.append(
            f"{r['model']}: candidate {r['accuracy']:.3f} vs incumbent {r['reference_accuracy']:.3f} "
            f"on {r['n_paired']} tasks, difference {r['delta']:+.3f} "
            f"(95% CI {r['ci_low']:+.3f} to {r['ci_high']:+.3f}; {r['wins']} won, {r['losses']} lost)"
            + (f" is below -{margin:g}" if bad else f" is within the margin -{margin:g}")
        )
    return ("refuse" if worse else "promote"), "; ".join(lines)


def run_row(
    eval_id: str,
    kind: str,
    env: Environment,
    split: str,
    n_tasks: int,
    arms_frame: pl.DataFrame,
    settings_json: str,
    verdict: tuple[str | None, str | None],
    started: float,
) -> pl.DataFrame:
    from datetime import UTC, datetime

    row = {
        "eval_id": eval_id,
        "kind": kind,
        "env": env.name,
        "split": split,
        "source": source_name(env, split),
        "n_tasks": n_tasks,
        "n_arms": arms_frame.height,
        "settings": settings_json,
        "verdict": verdict[0],
        "verdict_reason": verdict[1],
        "tokens_in": int(arms_frame.get_column("tokens_in").sum()),
        "tokens_out": int(arms_frame.get_column("tokens_out").sum()),
        "cost_usd": float(arms_frame.get_column("cost_usd").sum()),
        "seconds": time.perf_counter() - started,
        "created_at": datetime.now(UTC),
    }
    return schemas.validate(
        "eval_runs", pl.DataFrame([row], schema=schemas.table("eval_runs").columns)
    )
