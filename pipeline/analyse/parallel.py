"""Run an analyst's batches in worker processes, results in order.

The offline miner is CPU-bound Python, so on a multi-core machine its batches go to a pool of
processes (`pipeline.pool`: spawned, and ending with this process however it ends), each holding
one copy of the prepared analyst (its pool statistics included). The parent keeps reading batches
from the lake and writing results, in submission order, so what lands in the lake does not
depend on timing. Model analysts overlap their requests inside `analyse_batch` instead and run
in the parent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import TypeVar

from pipeline.analyse.analyst import AnalysisResult, Analyst, Batch
from pipeline.pool import process_pool

T = TypeVar("T")
_ANALYST: Analyst | None = None


def _init(analyst: Analyst) -> None:
    global _ANALYST
    _ANALYST = analyst


def _work(batch: Batch) -> list[AnalysisResult]:
    assert _ANALYST is not None
    return _ANALYST.analyse_batch(batch)


def map_batches(
    analyst: Analyst, batches: Iterable[tuple[T, Batch]], workers: int
) -> Iterator[tuple[T, Batch, list[AnalysisResult]]]:
    """(key, batch, outcomes) for every batch, in the order given; `workers` > 1 uses processes."""
    if workers <= 1:
        for key, batch in batches:
            yield key, batch, analyst.analyse_batch(batch)
        return
    with process_pool(workers, _init, (analyst,)) as pool:
        pending: deque[tuple[T, Batch, Future]] = deque()
        for key, batch in batches:
            pending.append((key, batch, pool.submit(_work, batch)))
            if len(pending) >= 2 * workers:  # bounded read-ahead: memory stays flat
                k, b, f = pending.popleft()
                yield k, b, f.result()
        while pending:
            k, b, f = pending.popleft()
            yield k, b, f.result()
