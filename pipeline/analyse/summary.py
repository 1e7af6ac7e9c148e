"""What an analyse run writes for each batch, and what it reports.

`write_batch` turns one batch's outcomes into `analyses` rows (one per trajectory: ok or error)
and `lessons` rows (ids from content, so a rerun or another engine writes the same ids; every text
field redacted, whichever analyst or model wrote it: nothing reaches the lake unredacted), writes
the lessons part then the analyses part under one name, and adds the batch to the run's
`AnalyseSummary`. The map commits every batch through it (`mapper.py`), whichever backend worked
the batch, so a run on Ray leaves the same parts as a local one. `AnalyseError` is a run that cannot start as asked.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from pipeline import executor, ids, schemas
from pipeline.analyse.analyst import AnalysisResult, AnalysisUsage, Analyst, LessonDraft
from pipeline.analyse.redact import redact
from pipeline.errors import UserError
from pipeline.lake import Lake

MAX_ERRORS = 20  # first failures a summary keeps, to show the user


class AnalyseError(UserError, RuntimeError):
    """The analyse run cannot start as asked (bad filter, unknown analyst, empty lake)."""


@dataclass
class AnalyseSummary:
    analyst: str
    model: str
    prompt_version: str
    config_id: str
    n_selected: int = 0
    n_skipped: int = 0
    n_analysed: int = 0
    n_failed: int = 0
    n_lessons: int = 0
    n_left: int = 0  # selected, not attempted: the run stopped early (a spent model budget)
    stopped: str | None = None  # why the run stopped early
    usage: AnalysisUsage = field(default_factory=AnalysisUsage)
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # first failures: (id, reason)
    lessons_by_rule: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)  # reason -> lessons rejected
    judged: Counter = field(default_factory=Counter)  # judged outcome -> runs
    tidied: dict[str, int] = field(default_factory=dict)


_LESSON_FIELDS = (
    "kind",
    "title",
    "description",
    "content",
    "target_section",
    "op",
    "evidence_steps",
    "tool_name",
    "rule",
    "confidence",
)
_LESSON_TEXT = ("title", "description", "content", "target_section", "tool_name")


def _lesson_fields(lesson: LessonDraft) -> dict:
    fields = {k: getattr(lesson, k) for k in _LESSON_FIELDS}
    return fields | {k: redact(fields[k]) for k in _LESSON_TEXT}


def rows(
    analyst: Analyst, cid: str, outcomes: list[AnalysisResult]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(analyses, lessons) of a batch's outcomes under configuration `cid`."""
    analyses, lessons = [], []
    for o in outcomes:
        aid = ids.digest("analysis", o.trajectory_id, cid)
        kept = {}
        if o.error is None:
            for lesson in o.lessons:
                fields = _lesson_fields(lesson)
                lid = ids.digest(
                    "lesson", aid, lesson.kind, fields["title"], fields["content"],
                    lesson.evidence_steps,
                )  # fmt: skip
                kept[lid] = {
                    "lesson_id": lid,
                    "analysis_id": aid,
                    "trajectory_id": o.trajectory_id,
                    **fields,
                    "analyst": analyst.name,
                    "model": analyst.model,
                    "prompt_version": analyst.prompt_version,
                    "created_at": o.finished_at,
                }
        lessons += kept.values()
        analyses.append(
            {
                "analysis_id": aid,
                "config_id": cid,
                "trajectory_id": o.trajectory_id,
                "analyst": analyst.name,
                "model": analyst.model,
                "prompt_version": analyst.prompt_version,
                "status": "ok" if o.error is None else "error",
                "error": redact(o.error),
                "n_lessons": len(kept),
                "n_calls": o.usage.n_calls,
                "tokens_in": o.usage.tokens_in,
                "tokens_out": o.usage.tokens_out,
                "cost_usd": float(o.usage.cost_usd),
                "n_rejected": sum(o.rejected.values()),
                "rejected": json.dumps(dict(sorted(o.rejected.items()))) if o.rejected else None,
                "judged_outcome": o.judged_outcome,
                "judge_reason": redact(o.judge_reason),
                "judge_confidence": o.judge_confidence,
                "n_tool_calls": o.n_tool_calls,
                "started_at": o.started_at,
                "finished_at": o.finished_at,
            }
        )
    return _frame("analyses", analyses), _frame("lessons", lessons)


def _frame(table: str, rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return schemas.empty(table)
    return pl.DataFrame(rows, schema=schemas.table(table).columns)


def marker(lake: Lake) -> executor.Marker:
    """Analyse's resume: a batch is done when its `analyses` part exists (written last)."""
    return executor.Marker(lake, "analyses", ("lessons",))


def part_name(worker: Analyst, cid: str, picked: list[str]) -> str:
    return f"{worker.name}-{cid[:10]}-{ids.digest(sorted(picked), length=16)}"


def write_batch(
    lake: Lake,
    worker: Analyst,
    cid: str,
    picked: list[str],
    outcomes: list[AnalysisResult],
    summary: AnalyseSummary,
) -> None:
    """Write the batch `picked` (trajectory ids, one outcome each) as a lessons part then its
    analyses part, and count it in `summary`."""
    analyses, lessons = rows(worker, cid, outcomes)
    data = [("lessons", lessons, None)] if lessons.height else []
    marker(lake).commit(part_name(worker, cid, picked), analyses, data)
    ok = analyses.filter(pl.col("status") == "ok")
    summary.n_analysed += ok.height
    summary.n_failed += analyses.height - ok.height
    summary.n_lessons += lessons.height
    summary.lessons_by_rule.update(lessons.get_column("rule").fill_null("-").to_list())
    for o in outcomes:
        summary.usage.add(o.usage)
        summary.rejected.update(o.rejected)
        if o.judged_outcome is not None and o.error is None:
            summary.judged[o.judged_outcome] += 1
        if o.error is not None and len(summary.errors) < MAX_ERRORS:
            summary.errors.append((o.trajectory_id, redact(o.error)))
