"""The analyse map on this machine: the selection's batches through one analyst, in order.

Reads `trajectories` and `steps` a chunk at a time (`selection.batches`); writes one `lessons`
part and one `analyses` part per batch (`summary.write_batch`), in the order of the sorted
selection, and counts each batch in the run's `AnalyseSummary`. The batches run in this process,
or, for a CPU-bound analyst (the miner), over worker processes (`parallel.py`). A model analyst
that spends its budget stops the map after the batch in flight; the rest is left for the next run.
"""

from __future__ import annotations

import os

import polars as pl

from pipeline.analyse.analyst import Analyst
from pipeline.analyse.parallel import map_batches
from pipeline.analyse.selection import batches
from pipeline.analyse.summary import AnalyseSummary, write_batch
from pipeline.console import Console
from pipeline.lake import Lake

PARALLEL_MIN_TRAJECTORIES = 4000  # below this, starting worker processes costs more than it saves


def map_here(
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
    picked_batches = batches(lake, todo, size)
    per_run = worker.reports_progress
    stream = worker.analyse_stream if procs <= 1 else None
    with console.progress(f"analysing ({worker.name})", todo.height) as advance:
        if per_run:
            worker.advance = advance

        def done(picked: pl.DataFrame, batch, outcomes) -> bool:
            """Write a batch; True when the analyst asks the map to stop."""
            write_batch(lake, worker, cid, picked, batch, outcomes, summary)
            if not per_run:
                advance(picked.height)
            stop = worker.stop_reason()
            if stop:
                summary.stopped = stop
                summary.n_left = todo.height - summary.n_analysed - summary.n_failed
            return bool(stop)

        if stream is not None:  # requests overlap across batches (the single analyst)
            stream(picked_batches, done)
            return
        for picked, batch, outcomes in map_batches(worker, picked_batches, procs):
            if done(picked, batch, outcomes):
                break


def _workers(worker: Analyst, asked: int | None, n_todo: int) -> int:
    if asked is not None:
        return max(1, asked)
    if not worker.cpu_bound or n_todo < PARALLEL_MIN_TRAJECTORIES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))
