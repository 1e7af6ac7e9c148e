"""Tables written by analyse: one analysis per trajectory and analyst, and the lessons it found."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from pipeline.schemas.registry import register
from pipeline.schemas.trajectory import Strict

LESSON_KINDS = ["failure_cause", "failure_lesson", "success_lesson", "workflow"]
OPS = ["add", "revise", "remove"]
# Analysts come from a registry that installed packages extend (pipeline.analyse.registry); a
# name also names the lake's parts, hence the characters.
ANALYST_NAME = r"^[A-Za-z0-9._-]+$"


@register("analyses")
class Analyses(pa.DataFrameModel):
    """One row per trajectory per analyst configuration: the MAP's done-marker, ok or error."""

    analysis_id: str = pa.Field(
        unique=True,
        description="digest of trajectory_id and config_id",
    )
    config_id: str = pa.Field(
        description="digest of analyst, model, prompt_version and analyst settings: the resume key"
    )
    trajectory_id: str = pa.Field(description="run analysed")
    analyst: str = pa.Field(
        str_matches=ANALYST_NAME, description="miner / single / agentic, or an installed one"
    )
    model: str = pa.Field(description="model name, 'offline' for the miner")
    prompt_version: str = pa.Field(description="version of the prompt files or miner rules")
    status: str = pa.Field(
        isin=["ok", "error"],
        description="ok, or error with a reason; errors are retried by the next run",
    )
    error: str = pa.Field(nullable=True, description="why the analysis failed")
    n_lessons: int = pa.Field(ge=0, description="lessons written")
    n_calls: int = pa.Field(ge=0, description="model calls made (cache hits included)")
    tokens_in: int = pa.Field(ge=0, description="prompt tokens of those calls, cache hits excluded")
    tokens_out: int = pa.Field(ge=0, description="completion tokens, cache hits excluded")
    cost_usd: float = pa.Field(ge=0, description="cost of those calls at the configured prices")
    n_rejected: int = pa.Field(
        ge=0,
        nullable=True,
        description="lessons the analyst proposed and the checks rejected (evidence steps not in "
        "the run, over the lesson limit, a revision of a section the skill lacks)",
    )
    rejected: str = pa.Field(
        nullable=True, description="JSON object: reason -> lessons rejected for it"
    )
    judged_outcome: str = pa.Field(
        isin=["success", "failure"],
        nullable=True,
        description="model analysts, runs of unknown outcome: success / failure as the model "
        "judged it from the run before analysing it",
    )
    judge_reason: str = pa.Field(nullable=True, description="why the model judged so")
    judge_confidence: float = pa.Field(
        ge=0, le=1, nullable=True, description="the model's confidence in its judgement, 0..1"
    )
    n_tool_calls: int = pa.Field(
        ge=0,
        nullable=True,
        description="agentic analyst: read-only tool calls it made while inspecting the run",
    )
    started_at: pl.Datetime("us", "UTC") = pa.Field(description="start")
    finished_at: pl.Datetime("us", "UTC") = pa.Field(description="end")

    class Config(Strict):
        pass


@register("lessons")
class Lessons(pa.DataFrameModel):
    """One row per lesson: a trajectory-local finding or patch proposal, with its evidence."""

    lesson_id: str = pa.Field(
        unique=True, description="digest of analysis_id and the lesson's content"
    )
    analysis_id: str = pa.Field(description="analysis that produced it")
    trajectory_id: str = pa.Field(description="run it was drawn from")
    kind: str = pa.Field(
        isin=LESSON_KINDS, description="failure_cause / failure_lesson / success_lesson / workflow"
    )
    title: str = pa.Field(
        str_length={"min_value": 1}, description="one-line imperative statement of the lesson"
    )
    description: str = pa.Field(nullable=True, description="when it applies")
    content: str = pa.Field(
        str_length={"min_value": 1}, description="the lesson in full, filled from the evidence"
    )
    target_section: str = pa.Field(
        nullable=True,
        description="section of the skill it belongs in (a base-skill heading when deepening)",
    )
    op: str = pa.Field(
        isin=OPS, description="add / revise / remove, relative to the target section"
    )
    evidence_steps: pl.List(pl.Int64) = pa.Field(
        description="step_idx values of the run that show it"
    )
    tool_name: str = pa.Field(nullable=True, description="main tool the lesson is about, if any")
    rule: str = pa.Field(
        nullable=True,
        description="miner rule (or model-given category) that produced it; groups lessons of one kind",
    )
    analyst: str = pa.Field(
        str_matches=ANALYST_NAME, description="miner / single / agentic, or an installed one"
    )
    model: str = pa.Field(description="model name, 'offline' for the miner")
    prompt_version: str = pa.Field(description="prompt or rule-set version")
    confidence: float = pa.Field(ge=0, le=1, description="analyst's confidence, 0..1")
    created_at: pl.Datetime("us", "UTC") = pa.Field(description="when written")

    class Config(Strict):
        pass
