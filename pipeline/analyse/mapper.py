"""The analyse map: the selection's batches through one analyst, on the executor.

Reads `trajectories` and `steps` a chunk at a time (`selection.batches`); writes one `lessons`
part and one `analyses` part per batch (`summary.write_batch`: the analyses part is the batch's
done-marker), in the order of the sorted selection, and counts each batch in the run's
`AnalyseSummary`. A batch is the executor's unit (`pipeline.executor`): `analysed` is its work
(it writes nothing), `Commit` its commit, here the same as on Ray (`ray_engine.py`). The work runs
in this process, or, for a CPU-bound analyst (the miner), in worker processes. A model analyst
that overlaps its requests across batches (`analyse_stream`) drives the same commits itself. An
analyst that spends its model budget stops the map after the batch in flight; the rest is left
for the next run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from pipeline import executor
from pipeline.analyse.analyst import AnalysisResult, Analyst, Batch
from pipeline.analyse.selection import batches
from pipeline.analyse.summary import AnalyseSummary, write_batch
from pipeline.console import Console
from pipeline.lake import Lake

PARALLEL_MIN_TRAJECTORIES = 4000  # below this, starting worker processes costs more than it saves


@dataclass
class Analysed:
    """A batch's work: one outcome per picked run (a run the batch no longer held gets an error
    outcome), and why the analyst asks to stop, if it does."""

    outcomes: list[AnalysisResult]
    stopped: str | None = None


def analysed(analyst: Analyst, picked: list[str], batch: Batch) -> Analysed:
    """The work of one batch: `analyst` over `batch`, for the runs `picked`."""
    return finished(analyst, picked, batch, analyst.analyse_batch(batch))


def finished(
    analyst: Analyst, picked: list[str], batch: Batch, outcomes: list[AnalysisResult]
) -> Analysed:
    """A batch's outcomes as its work's result: a picked run the batch did not hold (it left the
    lake since the selection) gets an error outcome."""
    missing = set(picked) - set(batch.trajectories.get_column("trajectory_id"))
    outcomes = outcomes + [
        AnalysisResult(tid, error="trajectory vanished from the lake during the run")
        for tid in sorted(missing)
    ]
    return Analysed(outcomes, analyst.stop_reason())


@dataclass
class Commit:
    """The commit of a batch: its parts written, the batch counted in `summary`; True (stop)
    when the analyst asked to stop, the runs not yet attempted then counted as left."""

    lake: Lake
    worker: Analyst
    cid: str
    summary: AnalyseSummary
    n_todo: int
    advance: Callable[[int], None] | None = None  # progress per batch (else the analyst's own)

    def __call__(self, picked: list[str], result: Analysed) -> bool:
        write_batch(self.lake, self.worker, self.cid, picked, result.outcomes, self.summary)
        if self.advance is not None:
            self.advance(len(picked))
        if result.stopped:
            s = self.summary
            s.stopped = result.stopped
            s.n_left = self.n_todo - s.n_analysed - s.n_failed
        return bool(result.stopped)


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
    units = ((_ids(picked), batch) for picked, batch in batches(lake, todo, size))
    per_run = worker.reports_progress
    with console.progress(f"analysing ({worker.name})", todo.height) as advance:
        if per_run:
            worker.advance = advance
        commit = Commit(lake, worker, cid, summary, todo.height, None if per_run else advance)
        if worker.analyse_stream is not None and procs <= 1:
            # requests overlap across batches (the single analyst): it calls the commits itself
            worker.analyse_stream(
                units,
                lambda picked, batch, out: commit(picked, finished(worker, picked, batch, out)),
            )
            return
        executor.run(
            units,
            executor.processes(functools.partial(_work, worker), procs),
            lambda unit, result: commit(unit[0], result),
        )


def _work(analyst: Analyst, unit: tuple[list[str], Batch]) -> Analysed:
    return analysed(analyst, *unit)


def _ids(picked: pl.DataFrame) -> list[str]:
    return picked.get_column("trajectory_id").to_list()


def _workers(worker: Analyst, asked: int | None, n_todo: int) -> int:
    if asked is not None:
        return max(1, asked)
    if not worker.cpu_bound or n_todo < PARALLEL_MIN_TRAJECTORIES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))
