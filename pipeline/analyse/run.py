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

Which analyst: the one named, else `single` when a model is given (not 'offline') and the
offline `miner` when none is. Model analysts send their requests concurrently inside a batch and
report progress per trajectory; when the model budget is spent the run stops after the batch in
flight (its unanswered runs get error rows) and the rest is left for the next run.

    summary = analyse(lake, analyst="miner", where="outcome = 'failure'", sample=0.2, seed=1)
    summary = analyse(lake, settings=ModelSettings.resolve(model="gpt-4o-mini"),
                      options={"max_lessons": 3})          # the single analyst
"""

from __future__ import annotations

import json
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
from pipeline.settings import ModelSettings, SettingsError

DEFAULT_BATCH_SIZE = 200
BATCH_API_SIZE = 2000  # trajectories per part (and per batch job) with the server's batch API
CHUNK_ROWS = 10_000  # trajectories read from the lake at once, then split into batches
PARALLEL_MIN_TRAJECTORIES = 4000  # below this, starting worker processes costs more than it saves
MODEL_ANALYSTS = ("single", "agentic")
ANALYSTS = ("miner", *MODEL_ANALYSTS)
# Options of the model analysts, and which analysts take them (the miner takes max_lessons and
# its thresholds).
MODEL_OPTIONS = {
    "render_tokens": MODEL_ANALYSTS,
    "max_turns": ("agentic",),
    "tokens_per_run": ("agentic",),
}
ENGINES = ("local", "ray")


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
    n_left: int = 0  # selected, not attempted: the run stopped early (a spent model budget)
    stopped: str | None = None  # why the run stopped early
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # first failures: (id, reason)
    lessons_by_rule: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)  # reason -> lessons rejected
    judged: Counter = field(default_factory=Counter)  # judged outcome -> runs
    tidied: dict[str, int] = field(default_factory=dict)


def make_analyst(
    name: str,
    *,
    settings: dict[str, Any] | None = None,
    base_skill: str | Path | None = None,
    model: str | None = None,
    model_settings: ModelSettings | None = None,
    console: Console | None = None,
) -> Analyst:
    """The analyst called `name`, configured. `settings` are its options (the miner's thresholds,
    ``max_lessons``, ``render_tokens``, ``max_turns``, ``tokens_per_run``); `model_settings`
    the model layer's, for `single` and `agentic`."""
    options = {k: v for k, v in (settings or {}).items() if v is not None}
    for key, takers in MODEL_OPTIONS.items():
        if key in options and name not in takers:
            raise AnalyseError(
                f"{key} is an option of the {' and '.join(takers)} analyst, not of {name}"
            )
    if name == "miner":
        if model not in (None, "", "offline"):
            raise AnalyseError(
                f"the miner analyst runs offline; --model {model!r} applies to model analysts only"
            )
        from pipeline.analyse.miner import MinerAnalyst

        return MinerAnalyst(options, base_skill=base_skill)
    if name not in MODEL_ANALYSTS:
        raise AnalyseError(f"unknown analyst {name!r}; choose {', '.join(ANALYSTS)}")
    if model_settings is None or model_settings.offline:
        raise AnalyseError(
            f"the {name} analyst needs a model: pass --model NAME (and --base-url for a local "
            "OpenAI-compatible server), or --analyst miner for the offline analysis"
        )
    if model_settings.batch and name == "agentic":
        raise AnalyseError(
            "the agentic analyst holds a conversation per run, which the batch API cannot; "
            "--batch applies to the single analyst"
        )
    if name == "single":
        from pipeline.analyse.single import SingleAnalyst as cls
    else:
        from pipeline.analyse.agentic import AgenticAnalyst as cls
    try:
        return cls(model_settings, options, base_skill=base_skill, console=console)
    except (ValueError, FileNotFoundError) as exc:  # SettingsError is a ValueError
        raise AnalyseError(str(exc)) from None


def _model_settings(
    settings: ModelSettings | Mapping[str, Any] | None,
    options: Mapping[str, Any] | None,
    model: str | None,
) -> tuple[ModelSettings | None, dict[str, Any]]:
    """(model settings, analyst options) from analyse()'s arguments (see its docstring)."""
    opts = dict(options or {})
    ms = settings if isinstance(settings, ModelSettings) else None
    if isinstance(settings, Mapping):
        opts = {**settings, **opts}
    if model not in (None, ""):
        try:
            ms = (
                ms.model_copy(update={"model": model})
                if ms is not None
                else ModelSettings.resolve(model=model)
            )
        except SettingsError as exc:
            raise AnalyseError(str(exc)) from None
    return ms, opts


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
                "n_rejected": sum(o.rejected.values()),
                "rejected": json.dumps(dict(sorted(o.rejected.items()))) if o.rejected else None,
                "judged_outcome": o.judged_outcome,
                "judge_reason": o.judge_reason,
                "judge_confidence": o.judge_confidence,
                "n_tool_calls": o.n_tool_calls,
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
    analyst: str | Analyst | None = None,
    settings: ModelSettings | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    base_skill: str | Path | None = None,
    limit: int | None = None,
    where: str | None = None,
    sample: float | int | None = None,
    seed: int = 0,
    console: Console | None = None,
    model: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    engine: str = "local",
    ray_address: str | None = None,
) -> AnalyseSummary:
    """Analyse the selected trajectories not yet analysed under this configuration.

    `where` is a SQL filter on `trajectories`; `sample` a count (>= 1) or a fraction (0..1)
    drawn with `seed`; `limit` keeps the first N of the (sampled) selection. Reruns with the same
    arguments do no work; new trajectories that match are analysed, and only they.

    `settings` is the pipeline's `ModelSettings` (the model analysts use it; the offline miner
    has no use for it), or, as before, a mapping of analyst options. `options` are the analyst's
    options (``batch_size``, ``max_lessons``, the miner's thresholds, ``render_tokens``,
    ``max_turns``, ``tokens_per_run``), part of its configuration. `model` names a model: it
    replaces the settings' model, or resolves settings for it (environment, ./trace2skill.toml).
    `analyst` None picks `single` when the model is not 'offline', else the miner.

    `workers`: processes for a CPU-bound analyst (the miner); by default one per core once
    there are enough trajectories to repay starting them, else the work stays in this process.

    `engine`: "local" (this machine) or "ray" (Ray Data, `ray_engine.py`: a local Ray instance,
    or the cluster at `ray_address`; `workers` is then the number of actors). Both write the
    same lessons and parts.
    """
    if engine not in ENGINES:
        raise AnalyseError(f"unknown engine {engine!r}; choose {' or '.join(ENGINES)}")
    if ray_address and engine != "ray":
        raise AnalyseError("--ray-address applies to --engine ray only")
    if engine == "ray":
        from pipeline.analyse import ray_engine

        try:
            ray_engine.import_ray()
        except ray_engine.RayUnavailable as exc:
            raise AnalyseError(str(exc)) from None
    model_settings, options = _model_settings(settings, options, model)
    console = console or Console(0)
    started = time.perf_counter()
    if analyst is None:
        offline = model_settings is None or model_settings.offline
        analyst = "miner" if offline else "single"
    worker = (
        analyst
        if not isinstance(analyst, str)
        else make_analyst(
            analyst,
            settings=options,
            base_skill=base_skill,
            model=model,
            model_settings=model_settings,
            console=console,
        )
    )
    cid = config_id(worker)
    summary = AnalyseSummary(worker.name, worker.model, worker.prompt_version, cid)
    if not lake.exists("trajectories"):
        raise AnalyseError(f"{lake.uri} holds no trajectories: run `trace2skill ingest` first")
    if engine == "ray" and getattr(getattr(worker, "model_settings", None), "batch", False):
        raise AnalyseError("the server's batch API is one job from one process: use --engine local")
    cpu_bound = getattr(worker, "cpu_bound", False)
    if engine == "local" and workers is not None and workers > 1 and not cpu_bound:
        raise AnalyseError(
            f"--workers applies to the miner; the {worker.name} analyst overlaps its model "
            "requests in one process (--concurrency)"
        )
    summary.tidied = tidy(lake)
    for what, n in summary.tidied.items():
        if n and what.startswith("parts upgraded"):
            console.detail(f"{n} {what} (analyses and lessons)")
        elif n:
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
    try:
        if todo.height:
            size = int(
                batch_size or options.get("batch_size") or _batch_size(model_settings, worker)
            )
            todo = todo.sort("trajectory_id")
            if engine == "ray":  # it prepares the analyst where it runs
                ray_engine.run(
                    lake, worker, cid, todo, size, summary, console, con=con,
                    address=ray_address, actors=workers,
                )  # fmt: skip
            else:
                worker.prepare(lake, con)
                _map_here(lake, worker, cid, todo, size, summary, console, workers)
            tidy(lake)  # the retries' rows replace the error rows they supersede
    finally:
        closer = getattr(worker, "close", None)
        if closer is not None:
            closer()
        con.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _map_here(
    lake: Lake,
    worker: Analyst,
    cid: str,
    todo: pl.DataFrame,
    size: int,
    summary: AnalyseSummary,
    console: Console,
    workers: int | None,
) -> None:
    """The map on this machine: in this process, or the miner's batches over worker processes."""
    procs = _workers(worker, workers, todo.height)
    if procs > 1:
        console.detail(f"analysing in {procs} worker processes")
    batches = _batches(lake, todo, size)
    per_run = getattr(worker, "reports_progress", False)
    with console.progress(f"analysing ({worker.name})", todo.height) as advance:
        if per_run:
            worker.advance = advance
        for picked, batch, outcomes in map_batches(worker, batches, procs):
            _write_batch(lake, worker, cid, picked, batch, outcomes, summary)
            if not per_run:
                advance(picked.height)
            stop = getattr(worker, "stop_reason", lambda: None)()
            if stop:
                summary.stopped = stop
                summary.n_left = todo.height - summary.n_analysed - summary.n_failed
                break


def _batch_size(model_settings: ModelSettings | None, worker: Analyst) -> int:
    if worker.name not in MODEL_ANALYSTS or model_settings is None:
        return DEFAULT_BATCH_SIZE
    if model_settings.batch:
        return BATCH_API_SIZE
    # Many waves of requests per part: each part ends on a partial wave (the slowest runs), and
    # a kill costs little (answers already logged in llm_calls are replayed by the rerun).
    return max(DEFAULT_BATCH_SIZE, 16 * model_settings.concurrency)


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
        summary.rejected.update(o.rejected)
        if o.judged_outcome is not None and o.error is None:
            summary.judged[o.judged_outcome] += 1
        if o.error is not None and len(summary.errors) < 20:
            summary.errors.append((o.trajectory_id, o.error))
