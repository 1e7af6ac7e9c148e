"""Episodes into lake rows: trajectories + steps (the native format), eval_results, skill_usage.

Runs land in ``trajectories``/``steps`` like any ingested source (``<env>-<split>``), with the
scorer's outcome and the gold answer under ``meta.grader``, so analyse and consolidate read them
as they read any other source.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from pipeline import schemas
from pipeline.evaluate.agent import PROMPT_VERSION, Episode
from pipeline.evaluate.env import Score
from pipeline.evaluate.skill import READ_TOOL, Skill
from pipeline.ids import digest
from pipeline.ingest.frames import build_frames, trajectory_id
from pipeline.ingest.record import Run

AGENT = "trace2skill-agent"
MIN_CITED_CHARS = 4  # shorter titles ("Io") match too much prose to count as a citation
# A title is cited when its words appear in a row in what the agent wrote, punctuation aside:
# both sides are lower-cased and every run of other characters read as one space.
NOT_A_WORD = r"[^0-9a-z]+"


def cited_words(text: str) -> str:
    """A title or path as the words a citation of it must contain."""
    return " ".join(re.sub(NOT_A_WORD, " ", text.lower()).split())


@dataclass(frozen=True)
class Arm:
    role: str  # rollout / baseline / candidate / incumbent / ablation
    model: str
    skill: Skill | None
    label: str
    ablated: str | None = None

    @property
    def variant(self) -> str:
        return "none" if self.skill is None else self.skill.variant

    def arm_id(self, eval_id: str) -> str:
        return digest(
            "arm", eval_id, self.role, self.label, self.model, self.skill and self.skill.digest
        )


@dataclass(frozen=True)
class Context:
    """Where episodes of one arm go."""

    eval_id: str
    kind: str  # rollout / eval
    env: str
    split: str
    source: str
    arm: Arm

    @property
    def arm_id(self) -> str:
        return self.arm.arm_id(self.eval_id)


def outcome(ep: Episode, score: Score) -> str:
    if ep.status == "error":
        return "unknown"  # a model or environment fault says nothing about the agent
    return "success" if score.correct else "failure"


def to_run(ep: Episode, score: Score, ctx: Context) -> Run:
    """An episode as ingest's record model: the same ids and step rules as any ingested run."""
    arm = ctx.arm
    meta = {
        "grader": {"gold": ep.task.gold, "correct": score.correct, "detail": score.detail},
        "env": ctx.env,
        "split": ctx.split,
        "task": ep.task.meta,
        "answer": ep.answer,
        "status": ep.status,
        "error": ep.error,
        "skill": None
        if arm.skill is None
        else {
            "name": arm.skill.name,
            "dir": arm.skill.root,
            "digest": arm.skill.digest,
            "variant": arm.skill.variant,
        },
        "run": {"kind": ctx.kind, "eval_id": ctx.eval_id, "arm_id": ctx.arm_id, "role": arm.role},
        "prompt_version": PROMPT_VERSION,
        "usage": {
            "turns": ep.n_turns,
            "cache_hits": ep.cache_hits,
            "tokens_in": ep.tokens_in,
            "tokens_out": ep.tokens_out,
            "cost_usd": ep.cost_usd,
            "seconds": round(ep.seconds, 3),
        },
    }
    return Run(
        record=f"{ctx.eval_id}/{ctx.arm_id}/{ep.task.task_id}",
        steps=list(ep.builder.steps),
        native_id=digest("episode", ctx.eval_id, ctx.arm_id, ep.task.task_id),
        task_id=ep.task.task_id,
        model=ep.model,
        agent=AGENT,
        outcome=outcome(ep, score),
        reward=None if ep.status == "error" else float(score.reward),
        meta=meta,
    )


def result_row(ep: Episode, score: Score, ctx: Context, trajectory_id: str) -> dict:
    submitted = ep.status == "submitted"
    return {
        "eval_id": ctx.eval_id,
        "arm_id": ctx.arm_id,
        "task_id": ep.task.task_id,
        "trajectory_id": trajectory_id,
        "source": ctx.source,
        "status": ep.status,
        "correct": submitted and score.correct,
        "reward": float(score.reward) if submitted else 0.0,
        "answer": None if ep.answer is None else json.dumps(ep.answer, ensure_ascii=False),
        "gold": json.dumps(ep.task.gold, ensure_ascii=False, default=str),
        "detail": score.detail,
        "error": ep.error,
        "n_turns": ep.n_turns,
        "n_tool_errors": sum(1 for s in ep.builder.steps if s[7]),
        "cache_hits": ep.cache_hits,
        "tokens_in": ep.tokens_in,
        "tokens_out": ep.tokens_out,
        "cost_usd": ep.cost_usd,
        "seconds": ep.seconds,
        "created_at": ep.finished_at or datetime.now(UTC),
    }


def frames(episodes: list[tuple[Episode, Score]], ctx: Context) -> dict[str, pl.DataFrame]:
    """Validated frames of one batch of episodes of one arm, keyed by table."""
    runs = [to_run(ep, score, ctx) for ep, score in episodes]
    built = build_frames(
        runs,
        source=ctx.source,
        file=f"{ctx.kind}:{ctx.env}:{ctx.split}",
        file_sha256=digest("batch", [(r.record, r.steps) for r in runs], length=64),
        format=ctx.kind,
        ingested_at=datetime.now(UTC),
    )
    if built.errors or built.duplicates:
        problems = [f"{e.record}: {e.error}" for e in built.errors]
        problems += [f"{d.record}: duplicate" for d in built.duplicates]
        raise RuntimeError(f"episodes could not be recorded: {problems}")
    results = [
        result_row(ep, score, ctx, trajectory_id(ctx.source, run))
        for (ep, score), run in zip(episodes, runs, strict=True)
    ]
    columns = schemas.table("eval_results").columns
    result_frame = schemas.validate("eval_results", pl.DataFrame(results, schema=columns))
    return {
        "trajectories": built.trajectories,
        "steps": built.steps,
        "eval_results": result_frame,
        "skill_usage": schemas.validate("skill_usage", usage(built.steps, result_frame, ctx)),
    }


def usage(steps: pl.DataFrame, results: pl.DataFrame, ctx: Context) -> pl.DataFrame:
    """Skill sections and files each episode read through the tool or named in its own words."""
    skill = ctx.arm.skill
    if skill is None or steps.height == 0:
        return schemas.empty("skill_usage")
    files = ["SKILL.md", *skill.files]
    calls = steps.filter((pl.col("kind") == "tool_call") & (pl.col("tool_name") == READ_TOOL))
    answered = steps.filter(pl.col("kind") == "tool_result").select(
        "trajectory_id", pl.col("call_step_idx").alias("step_idx"), "is_error"
    )
    read = (
        calls.join(answered, on=["trajectory_id", "step_idx"], how="inner")
        .filter(~pl.col("is_error"))
        .with_columns(
            item=pl.col("tool_args")
            .str.json_path_match("$.path")
            .str.strip_chars()
            .str.strip_chars_start("./")
            .replace("", "SKILL.md"),
            item_kind=pl.lit("file"),
            how=pl.lit("read"),
        )
        .filter(pl.col("item").is_in(files))
        .select("trajectory_id", "step_idx", "item_kind", "item", "how")
    )
    needles = pl.DataFrame(
        [
            {"item_kind": "section", "item": s.title, "needle": cited_words(s.title)}
            for s in skill.sections()
        ]
        + [{"item_kind": "file", "item": f, "needle": cited_words(f)} for f in skill.files],
        schema={"item_kind": pl.String, "item": pl.String, "needle": pl.String},
    ).filter(pl.col("needle").str.len_chars() >= MIN_CITED_CHARS)
    said = (
        steps.filter((pl.col("role") == "assistant") & pl.col("content").is_not_null())
        .with_columns(
            text=pl.concat_str(
                pl.lit(" "),
                pl.col("content").str.to_lowercase().str.replace_all(NOT_A_WORD, " "),
                pl.lit(" "),
            )
        )
        .select("trajectory_id", "step_idx", "text")
    )
    cited = (
        said.join(needles, how="cross")
        .filter(pl.col("text").str.contains(" " + pl.col("needle") + " ", literal=True))
        .with_columns(how=pl.lit("cited"))
        .select("trajectory_id", "step_idx", "item_kind", "item", "how")
    )
    tasks = results.select("trajectory_id", "task_id")
    return (
        pl.concat([read, cited])
        .group_by("trajectory_id", "item_kind", "item", "how")
        .agg(n=pl.len().cast(pl.Int64), first_step_idx=pl.col("step_idx").min())
        .join(tasks, on="trajectory_id", how="left")
        .with_columns(eval_id=pl.lit(ctx.eval_id), arm_id=pl.lit(ctx.arm_id))
        .select(list(schemas.table("skill_usage").columns))
        .sort("trajectory_id", "item_kind", "item", "how")
    )
