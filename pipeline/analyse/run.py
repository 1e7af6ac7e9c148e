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

The pieces: `selection.py` picks the runs still to analyse and reads them in batches,
`mapper.py` maps the batches on the executor (`pipeline.executor`: this process, worker processes,
or Ray with `ray_engine.py`), `summary.py` writes each batch's parts and adds it to the run's
`AnalyseSummary`. This module checks the arguments,
picks and configures the analyst, and runs the whole.

    summary = analyse(lake, analyst="miner", where="outcome = 'failure'", sample=0.2, seed=1)
    summary = analyse(lake, settings=ModelSettings.resolve(model="gpt-4o-mini"),
                      options={"max_lessons": 3})          # the single analyst
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import audits, sql
from pipeline.analyse import registry
from pipeline.analyse.analyst import Analyst, config_id
from pipeline.analyse.behaviour import derive
from pipeline.analyse.mapper import map_here
from pipeline.analyse.selection import select
from pipeline.analyse.summary import AnalyseError, AnalyseSummary
from pipeline.analyse.tidy import tidy
from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.settings import ModelSettings, SettingsError

__all__ = ["AnalyseError", "AnalyseSummary", "analyse", "make_analyst", "select"]

DEFAULT_BATCH_SIZE = 200
BATCH_API_SIZE = 2000  # trajectories per part (and per batch job) with the server's batch API
ENGINES = ("local", "ray")


def make_analyst(
    name: str,
    *,
    settings: dict[str, Any] | None = None,
    base_skill: str | Path | None = None,
    model: str | None = None,
    model_settings: ModelSettings | None = None,
    console: Console | None = None,
) -> Analyst:
    """The analyst called `name` (built-in or installed: `registry.py`), configured. `settings`
    are its options (``max_lessons``, the miner's thresholds, ``render_tokens``, ``max_turns``,
    ``tokens_per_run``, an installed analyst's own); `model_settings` the model layer's, for
    the analysts that need a model."""
    options = {k: v for k, v in (settings or {}).items() if v is not None}
    registry.check_options(name, options)
    if not registry.needs_model(name):
        if model not in (None, "", "offline"):
            raise AnalyseError(
                f"the {name} analyst runs offline; --model {model!r} applies to model analysts only"
            )
    elif model_settings is None or model_settings.offline:
        raise AnalyseError(
            f"the {name} analyst needs a model: pass --model NAME (and --base-url for a local "
            "OpenAI-compatible server), or --analyst miner for the offline analysis"
        )
    return registry.build(
        name,
        options=options,
        base_skill=base_skill,
        model_settings=model_settings,
        console=console,
    )


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
    registry.check(worker)
    cid = config_id(worker)
    summary = AnalyseSummary(worker.name, worker.model, worker.prompt_version, cid)
    if not lake.exists("trajectories"):
        raise AnalyseError(f"{lake.uri} holds no trajectories: run `trace2skill ingest` first")
    if engine == "ray" and worker.model_settings is not None and worker.model_settings.batch:
        raise AnalyseError("the server's batch API is one job from one process: use --engine local")
    if engine == "local" and workers is not None and workers > 1 and not worker.cpu_bound:
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
    behaviour = derive(lake, con)
    console.detail(
        f"behaviour: {behaviour.contrasts.height} features compared, "
        f"{behaviour.contrasts.filter(pl.col('is_finding')).height} findings (table contrasts)"
    )
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
                map_here(lake, worker, cid, todo, size, summary, console, workers)
            tidy(lake)  # the retries' rows replace the error rows they supersede
    finally:
        worker.close()
        con.close()
    audits.after(lake, "analyse", console)
    summary.seconds = time.perf_counter() - started
    return summary


def _batch_size(model_settings: ModelSettings | None, worker: Analyst) -> int:
    if not worker.needs_model or model_settings is None:
        return DEFAULT_BATCH_SIZE
    if model_settings.batch:
        return BATCH_API_SIZE
    # Many waves of requests per part: each part ends on a partial wave (the slowest runs), and
    # a kill costs little (answers already logged in llm_calls are replayed by the rerun).
    return max(DEFAULT_BATCH_SIZE, 16 * model_settings.concurrency)
