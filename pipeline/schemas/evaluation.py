"""Tables written by rollout and eval: runs, arms, per-task results, paired comparisons, usage.

A rollout is an evaluation with one arm. Every table carries ``eval_id`` (a digest of the
environment, split, tasks, arms and agent settings), so a rerun of the same evaluation replaces
its own parts and resumes where it stopped.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from pipeline.schemas.registry import register
from pipeline.schemas.trajectory import Strict

STATUSES = ["submitted", "turn_limit", "error"]
ROLES = ["rollout", "baseline", "candidate", "incumbent", "ablation"]


@register("eval_runs")
class EvalRuns(pa.DataFrameModel):
    """One row per rollout or eval command run: its settings, totals and the guard's verdict."""

    eval_id: str = pa.Field(unique=True, description="digest of env, split, tasks, arms, settings")
    kind: str = pa.Field(isin=["rollout", "eval"], description="rollout or eval")
    env: str = pa.Field(description="environment name")
    split: str = pa.Field(description="task split")
    source: str = pa.Field(description="trajectories source its runs were written to")
    n_tasks: int = pa.Field(ge=0, description="tasks per arm")
    n_arms: int = pa.Field(ge=0, description="model x skill-variant combinations run")
    settings: str = pa.Field(
        description="JSON: models, skills, baseline, incumbent, margin, seed, max_turns, temperature, limit, bootstrap"
    )
    verdict: str = pa.Field(
        nullable=True,
        isin=["promote", "refuse"],
        description="regression guard: promote or refuse (null without --incumbent)",
    )
    verdict_reason: str = pa.Field(nullable=True, description="the numbers behind the verdict")
    tokens_in: int = pa.Field(ge=0, description="prompt tokens of every episode")
    tokens_out: int = pa.Field(ge=0, description="completion tokens")
    cost_usd: float = pa.Field(ge=0, description="cost at the configured prices")
    seconds: float = pa.Field(ge=0, description="wall time of the command")
    created_at: pl.Datetime("us", "UTC") = pa.Field(description="when")

    class Config(Strict):
        pass


@register("eval_arms")
class EvalArms(pa.DataFrameModel):
    """One row per arm (a model with a skill variant) of an evaluation: accuracy and usage."""

    eval_id: str = pa.Field(description="evaluation")
    arm_id: str = pa.Field(description="digest of eval_id, model and skill digest")
    role: str = pa.Field(
        isin=ROLES, description="rollout / baseline / candidate / incumbent / ablation"
    )
    label: str = pa.Field(
        description="skill shown in tables: 'no skill', folder name, 'without: X'"
    )
    model: str = pa.Field(description="model that drove the agent")
    skill_name: str = pa.Field(nullable=True, description="skill's frontmatter name; null for none")
    skill_dir: str = pa.Field(nullable=True, description="skill folder")
    skill_digest: str = pa.Field(nullable=True, description="digest of the skill's files")
    variant: str = pa.Field(description="'none', 'full' or 'without:<section or file>'")
    ablated: str = pa.Field(nullable=True, description="section title or file left out")
    n_tasks: int = pa.Field(ge=0, description="tasks run")
    n_correct: int = pa.Field(ge=0, description="tasks answered right")
    n_submitted: int = pa.Field(ge=0, description="tasks with a submitted answer")
    n_errors: int = pa.Field(ge=0, description="episodes ended by a model or environment fault")
    accuracy: float = pa.Field(
        ge=0, le=1, description="n_correct / n_tasks (faults count as wrong)"
    )
    ci_low: float = pa.Field(ge=0, le=1, description="bootstrap percentile interval, low end")
    ci_high: float = pa.Field(ge=0, le=1, description="bootstrap percentile interval, high end")
    mean_turns: float = pa.Field(ge=0, description="model calls per episode")
    tokens_in: int = pa.Field(ge=0, description="prompt tokens")
    tokens_out: int = pa.Field(ge=0, description="completion tokens")
    cost_usd: float = pa.Field(ge=0, description="cost")
    seconds: float = pa.Field(ge=0, description="summed episode wall time")

    class Config(Strict):
        pass


@register("eval_results")
class EvalResults(pa.DataFrameModel):
    """One row per task per arm: the episode's outcome, answer and cost."""

    eval_id: str = pa.Field(description="evaluation")
    arm_id: str = pa.Field(description="arm")
    task_id: str = pa.Field(description="task")
    trajectory_id: str = pa.Field(description="the episode in trajectories / steps")
    source: str = pa.Field(description="trajectories source")
    status: str = pa.Field(isin=STATUSES, description="submitted / turn_limit / error")
    correct: bool = pa.Field(description="scored right (false for every other status)")
    reward: float = pa.Field(description="environment's reward")
    answer: str = pa.Field(nullable=True, description="JSON of the submitted answer")
    gold: str = pa.Field(description="JSON of the gold answer")
    detail: str = pa.Field(nullable=True, description="scorer's explanation")
    error: str = pa.Field(nullable=True, description="fault that ended the episode")
    n_turns: int = pa.Field(ge=0, description="model calls")
    n_tool_errors: int = pa.Field(ge=0, description="tool results that were errors")
    cache_hits: int = pa.Field(ge=0, description="model calls answered from llm_calls")
    tokens_in: int = pa.Field(ge=0, description="prompt tokens (0 for cache hits)")
    tokens_out: int = pa.Field(ge=0, description="completion tokens")
    cost_usd: float = pa.Field(ge=0, description="cost")
    seconds: float = pa.Field(ge=0, description="episode wall time")
    created_at: pl.Datetime("us", "UTC") = pa.Field(description="when the episode ended")

    class Config(Strict):
        pass


@register("eval_comparisons")
class EvalComparisons(pa.DataFrameModel):
    """One row per paired comparison of two arms of one model over the same tasks."""

    eval_id: str = pa.Field(description="evaluation")
    model: str = pa.Field(description="model of both arms")
    kind: str = pa.Field(
        isin=["vs_baseline", "vs_incumbent", "ablation"],
        description="skill vs baseline; candidate vs incumbent; full skill vs one unit left out",
    )
    arm_id: str = pa.Field(description="arm measured (the skill; the full skill for ablations)")
    reference_arm_id: str = pa.Field(description="arm it is compared to")
    label: str = pa.Field(description="label of arm_id")
    reference_label: str = pa.Field(description="label of reference_arm_id")
    unit: str = pa.Field(nullable=True, description="ablation: section title or file left out")
    n_paired: int = pa.Field(ge=0, description="tasks both arms ran")
    accuracy: float = pa.Field(ge=0, le=1, description="arm accuracy on those tasks")
    reference_accuracy: float = pa.Field(ge=0, le=1, description="reference accuracy")
    delta: float = pa.Field(
        description="accuracy - reference_accuracy (ablation: the unit's effect)"
    )
    ci_low: float = pa.Field(description="paired bootstrap interval of delta, low end")
    ci_high: float = pa.Field(description="high end")
    p_not_better: float = pa.Field(
        ge=0, le=1, description="share of bootstrap resamples with delta <= 0"
    )
    wins: int = pa.Field(ge=0, description="tasks right in the arm, wrong in the reference")
    losses: int = pa.Field(ge=0, description="tasks wrong in the arm, right in the reference")
    rank: int = pa.Field(nullable=True, description="ablation: rank by effect, 1 = most useful")

    class Config(Strict):
        pass


@register("skill_usage")
class SkillUsage(pa.DataFrameModel):
    """One row per episode per skill section or file it read (through the tool) or cited."""

    eval_id: str = pa.Field(description="evaluation or rollout")
    arm_id: str = pa.Field(description="arm")
    trajectory_id: str = pa.Field(description="episode")
    task_id: str = pa.Field(description="task")
    item_kind: str = pa.Field(isin=["section", "file"], description="SKILL.md section or a file")
    item: str = pa.Field(description="section title or file path")
    how: str = pa.Field(
        isin=["read", "cited"],
        description="read through read_skill_file, or named in the agent's own words",
    )
    n: int = pa.Field(ge=1, description="times")
    first_step_idx: int = pa.Field(ge=0, description="first step where it happened")

    class Config(Strict):
        pass
