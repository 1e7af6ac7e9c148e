"""The analyse MAP: every selected trajectory through one analyst, resumable and incremental.

Reads `trajectories` and `steps`; writes `lessons` and `analyses` (the done-marker) in parts,
one pair per batch, named alike: ``part-<analyst>-<config>-<batch digest>``. The lessons part is
written first and the analyses part last, so a batch counts as done only when both exist; a kill
loses at most the batch in flight, and the next run deletes a lessons part left without its
analyses part before it starts (`tidy`).

A trajectory is skipped when it already has an ok analysis under the same analyst configuration
(analyst, model, prompt version, settings: `analyst.config_id`). A trajectory whose analysis
failed gets an error row and is retried by the next run; the retry's row replaces the error row
(`tidy` again, at the end of a run), so `analyses` keeps one row per trajectory and configuration.

    summary = analyse(lake, analyst="miner", where="outcome = 'failure'", sample=0.2, seed=1)
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import ids, schemas, sql
from pipeline.analyse.analyst import Analyst, Batch, Outcome, Usage, config_id
from pipeline.analyse.parallel import map_batches
from pipeline.analyse.tidy import tidy
from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.settings import ModelSettings

DEFAULT_BATCH_SIZE = 200
CHUNK_ROWS = 10_000  # trajectories read from the lake at once, then split into batches
PARALLEL_MIN_TRAJECTORIES = 4000  # below this, starting worker processes costs more than it saves
MODEL_ANALYSTS = ("single", "agentic")


class AnalyseError(RuntimeError):
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
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # first failures: (id, reason)
    lessons_by_rule: Counter = field(default_factory=Counter)
    tidied: dict[str, int] = field(default_factory=dict)


def make_analyst(
    name: str,
    *,
    settings: dict[str, Any] | None = None,
    base_skill: str | Path | None = None,
    model: str | None = None,
) -> Analyst:
    """The analyst called `name`, configured; model analysts are not part of this version."""
    if name == "miner":
        if model not in (None, "", "offline"):
            raise AnalyseError(
                f"the miner analyst runs offline; --model {model!r} applies to model analysts only"
            )
        from pipeline.analyse.miner import MinerAnalyst

        return MinerAnalyst(settings, base_skill=base_skill)
    if name in MODEL_ANALYSTS:
        raise AnalyseError(f"the {name} analyst needs a model; not built in this version")
    raise AnalyseError(f"unknown analyst {name!r}; choose miner, single or agentic")


def select(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    cid: str,
    *,
    where: str | None,
    sample: float | int | None,
    seed: int,
    limit: int | None,
) -> pl.DataFrame:
    """The selection (trajectory_id, source, outcome, pick_order, is_done) in pick order."""
    filt = where.strip() if where and where.strip() else "true"
    if ";" in filt:
        raise AnalyseError(f"--where must be one filter expression, got {where!r}")
    try:
        # The filter is the user's own SQL over their own lake; values they pass stay theirs.
        con.sql(
            "create or replace temp view selected_trajectories as "
            f"select * from trajectories where ({filt})"
        )
        con.sql("select count(*) from selected_trajectories").fetchall()
    except duckdb.Error as exc:
        columns = ", ".join(schemas.table("trajectories").columns)
        raise AnalyseError(
            f"--where {where!r} is not a valid filter on trajectories ({exc}); columns: {columns}"
        ) from exc
    sample_n = sample_frac = None
    if sample is not None:
        if isinstance(sample, float) and 0 < sample < 1:
            sample_frac = sample
        elif float(sample) >= 1 and float(sample).is_integer():
            sample_n = int(sample)
        else:
            raise AnalyseError(
                f"--sample must be a count >= 1 or a fraction in (0, 1), got {sample}"
            )
    if limit is not None and limit < 0:
        raise AnalyseError(f"--limit must be >= 0, got {limit}")
    return sql.query(
        con,
        "analyse_selection",
        config_id=cid,
        seed=str(seed),
        sampled=sample is not None,
        sample_n=sample_n,
        sample_frac=sample_frac,
        limit=limit,
    )


def _load(lake: Lake, picked: pl.DataFrame) -> Batch:
    ids_ = picked.get_column("trajectory_id").to_list()
    sources = picked.get_column("source").unique().to_list()
    keep = pl.col("trajectory_id").is_in(ids_) & pl.col("source").is_in(sources)
    return Batch(
        lake.scan("trajectories").filter(keep).collect(), lake.scan("steps").filter(keep).collect()
    )


def _batches(lake: Lake, todo: pl.DataFrame, size: int) -> Iterator[tuple[pl.DataFrame, Batch]]:
    """Batches of `size` trajectories with their steps. The lake is read a chunk of batches at a
    time (one scan serves many batches; memory stays bounded by the chunk)."""
    chunk = size * max(1, CHUNK_ROWS // size)
    for start in range(0, todo.height, chunk):
        wanted = todo.slice(start, chunk)
        loaded = _load(lake, wanted)
        steps_of = loaded.steps.partition_by("trajectory_id", as_dict=True)
        for offset in range(0, wanted.height, size):
            picked = wanted.slice(offset, size)
            ids_ = picked.get_column("trajectory_id").to_list()
            parts = [steps_of[(t,)] for t in ids_ if (t,) in steps_of]
            yield (
                picked,
                Batch(
                    loaded.trajectories.filter(pl.col("trajectory_id").is_in(ids_)),
                    pl.concat(parts) if parts else loaded.steps.clear(),
                ),
            )


def _rows(analyst: Analyst, cid: str, outcomes: list[Outcome]) -> tuple[pl.DataFrame, pl.DataFrame]:
    analyses, lessons = [], []
    for o in outcomes:
        aid = ids.digest("analysis", o.trajectory_id, cid)
        kept = {}
        if o.error is None:
            for lesson in o.lessons:
                lid = ids.digest(
                    "lesson", aid, lesson.kind, lesson.title, lesson.content, lesson.evidence_steps
                )
                kept[lid] = {
                    "lesson_id": lid,
                    "analysis_id": aid,
                    "trajectory_id": o.trajectory_id,
                    **{k: getattr(lesson, k) for k in _LESSON_FIELDS},
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
                "error": o.error,
                "n_lessons": len(kept),
                "n_calls": o.usage.n_calls,
                "tokens_in": o.usage.tokens_in,
                "tokens_out": o.usage.tokens_out,
                "cost_usd": float(o.usage.cost_usd),
                "started_at": o.started_at,
                "finished_at": o.finished_at,
            }
        )
    return _frame("analyses", analyses), _frame("lessons", lessons)


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


def _frame(table: str, rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return schemas.empty(table)
    return pl.DataFrame(rows, schema=schemas.table(table).columns)


def analyse(
    lake: Lake,
    *,
    analyst: str | Analyst = "miner",
    settings: ModelSettings | Mapping[str, Any] | None = None,
    base_skill: str | Path | None = None,
    limit: int | None = None,
    where: str | None = None,
    sample: float | int | None = None,
    seed: int = 0,
    console: Console | None = None,
    model: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
) -> AnalyseSummary:
    """Analyse the selected trajectories not yet analysed under this configuration.

    `where` is a SQL filter on `trajectories`; `sample` a count (>= 1) or a fraction (0..1)
    drawn with `seed`; `limit` keeps the first N of the (sampled) selection. Reruns with the same
    arguments do no work; new trajectories that match are analysed, and only they.

    `settings` is either the pipeline's `ModelSettings` (for model analysts; the offline miner
    has no use for it) or a mapping of analyst options (``batch_size``, the miner's thresholds,
    ``max_lessons``), which are part of the analyst's configuration.

    `workers`: processes for a CPU-bound analyst (the miner); by default one per core once
    there are enough trajectories to repay starting them, else the work stays in this process.
    """
    options = dict(settings) if isinstance(settings, Mapping) else None
    console = console or Console(0)
    started = time.perf_counter()
    worker = (
        analyst
        if not isinstance(analyst, str)
        else make_analyst(analyst, settings=options, base_skill=base_skill, model=model)
    )
    cid = config_id(worker)
    summary = AnalyseSummary(worker.name, worker.model, worker.prompt_version, cid)
    if not lake.exists("trajectories"):
        raise AnalyseError(f"{lake.uri} holds no trajectories: run `trace2skill ingest` first")
    summary.tidied = tidy(lake)
    for what, n in summary.tidied.items():
        if n:
            console.warn(f"removed {n} {what} left by an interrupted run")
    con = sql.connect(lake)
    con.sql("set enable_progress_bar = false")  # our own bar reports progress
    selection = select(lake, con, cid, where=where, sample=sample, seed=seed, limit=limit)
    todo = selection.filter(~pl.col("is_done"))
    summary.n_selected = selection.height
    summary.n_skipped = selection.height - todo.height
    console.info(
        f"analyse ({worker.name}, {worker.model}, {worker.prompt_version}): "
        f"{summary.n_selected} selected, {summary.n_skipped} already done, {todo.height} to analyse"
    )
    if todo.height:
        worker.prepare(lake, con)
        size = int(batch_size or (options or {}).get("batch_size") or DEFAULT_BATCH_SIZE)
        todo = todo.sort("trajectory_id")
        procs = _workers(worker, workers, todo.height)
        if procs > 1:
            console.detail(f"analysing in {procs} worker processes")
        batches = _batches(lake, todo, size)
        with console.progress(f"analysing ({worker.name})", todo.height) as advance:
            for picked, batch, outcomes in map_batches(worker, batches, procs):
                _write_batch(lake, worker, cid, picked, batch, outcomes, summary)
                advance(picked.height)
        tidy(lake)  # the retries' rows replace the error rows they supersede
    con.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _workers(worker: Analyst, asked: int | None, n_todo: int) -> int:
    if asked is not None:
        return max(1, asked)
    if not getattr(worker, "cpu_bound", False) or n_todo < PARALLEL_MIN_TRAJECTORIES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _write_batch(
    lake: Lake,
    worker: Analyst,
    cid: str,
    picked: pl.DataFrame,
    batch: Batch,
    outcomes: list[Outcome],
    summary: AnalyseSummary,
) -> None:
    missing = set(picked.get_column("trajectory_id")) - set(
        batch.trajectories.get_column("trajectory_id")
    )
    outcomes = outcomes + [
        Outcome(tid, error="trajectory vanished from the lake during the run")
        for tid in sorted(missing)
    ]
    analyses, lessons = _rows(worker, cid, outcomes)
    part = f"{worker.name}-{cid[:10]}-{ids.digest(sorted(picked.get_column('trajectory_id').to_list()), length=16)}"
    if lessons.height:
        lake.write_part("lessons", lessons, part=part)
    lake.write_part("analyses", analyses, part=part)
    ok = analyses.filter(pl.col("status") == "ok")
    summary.n_analysed += ok.height
    summary.n_failed += analyses.height - ok.height
    summary.n_lessons += lessons.height
    summary.lessons_by_rule.update(lessons.get_column("rule").fill_null("-").to_list())
    for o in outcomes:
        summary.usage.add(o.usage)
        if o.error is not None and len(summary.errors) < 20:
            summary.errors.append((o.trajectory_id, o.error))
