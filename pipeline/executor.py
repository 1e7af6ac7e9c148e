"""One executor for the stages that map units of work to parts of the lake: ingest, analyse, eval.

A stage cuts its work into units (a batch of files, of trajectories, of episodes), each with a
part name, and gives two functions: `work(unit) -> result`, which writes nothing, and
`commit(unit, result) -> bool`, which writes the unit's parts (and returns True to stop the run).
The executor owns the rest, the same way for every stage:

- where the work runs (a `Backend`): in this process (`here`), in worker processes
  (`processes`: spawned, ending with this process), or on Ray (the analyse map's
  `ray_engine.backend`); work that waits on a model server runs as coroutines on one event loop
  (`run_async`: the waiting overlaps, the commits keep their order);
- commit order: results are committed in this process, in the order of the units, whatever the
  backend and however the timing fell, so what lands in the lake does not depend on either;
- resume: a unit is done when its marker is in the lake (`Marker`: the marker table's part of the
  unit's name, written after the unit's other parts), so a kill loses at most the units in flight
  and a rerun does only the units not yet done; the data parts a killed commit left without their
  marker are removed once their writer is gone (`Marker.remove_abandoned`);
- the run's figures (`Executed`): units run, units committed, whether and why it stopped, time.

Ingest's files are a unit's members, and its marker is the ``ingest_files`` rows of the batch
(a file is done when its content hash and reading settings match its last row); analyse's marker
is the ``analyses`` part of a batch, eval's the ``eval_results`` part.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import polars as pl
import pyarrow.fs as pafs

from pipeline import writers
from pipeline.lake import Lake
from pipeline.pool import process_pool

U = TypeVar("U")
R = TypeVar("R")
READ_AHEAD = 2  # units submitted per worker ahead of the one committed: memory stays flat


class Backend(Protocol[U, R]):
    """Where units are worked: yields (unit, result) for every unit, in the order given."""

    def __call__(self, units: Iterable[U]) -> Iterator[tuple[U, R]]: ...


@dataclass
class Executed:
    """What a run of the executor did."""

    n_units: int = 0  # units whose work was started
    n_committed: int = 0
    stopped: bool = False  # a commit asked to stop: the units after it were left for a rerun
    seconds: float = 0.0


def run(units: Iterable[U], backend: Backend[U, R], commit: Callable[[U, R], bool]) -> Executed:
    """Work every unit on `backend` and commit the results in order; a commit returning True
    stops the run (the units still in flight are dropped: their work is redone by a rerun)."""
    started = time.perf_counter()
    executed = Executed()
    results = backend(_counted(units, executed))
    try:
        for unit, result in results:
            executed.n_committed += 1
            if commit(unit, result):
                executed.stopped = True
                break
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # ends a pool or an event loop still working on later units
    executed.seconds = time.perf_counter() - started
    return executed


def _counted(units: Iterable[U], executed: Executed) -> Iterator[U]:
    for unit in units:
        executed.n_units += 1
        yield unit


def here(work: Callable[[U], R]) -> Backend[U, R]:
    """The work in this process, one unit after the other."""

    def backend(units: Iterable[U]) -> Iterator[tuple[U, R]]:
        for unit in units:
            yield unit, work(unit)

    return backend


def processes(work: Callable[[U], R], workers: int) -> Backend[U, R]:
    """The work in `workers` spawned processes (`pipeline.pool`), each holding one copy of `work`
    (pickled once, at its start: a bound method carries its object), results in unit order with a
    bounded read-ahead. One worker means this process."""
    if workers <= 1:
        return here(work)

    def backend(units: Iterable[U]) -> Iterator[tuple[U, R]]:
        with process_pool(workers, _hold, (work,)) as pool:
            pending: deque[tuple[U, Future]] = deque()
            try:
                for unit in units:
                    pending.append((unit, pool.submit(_work, unit)))
                    if len(pending) >= READ_AHEAD * workers:
                        done, future = pending.popleft()
                        yield done, future.result()
                while pending:
                    done, future = pending.popleft()
                    yield done, future.result()
            finally:  # a stop: the units not started yet are not started
                for _, future in pending:
                    future.cancel()

    return backend


_WORK: list[Callable] = []  # the work of this worker process, set once at its start


def _hold(work: Callable) -> None:
    _WORK[:] = [work]


def _work(unit: Any) -> Any:
    return _WORK[0](unit)


async def run_async(
    units: Iterable[U],
    work: Callable[[U], Awaitable[R]],
    commit: Callable[[U, R], bool],
    *,
    width: int,
) -> Executed:
    """`run` for work that waits (on a model server): the units' work as coroutines on the running
    event loop, `width` units at a time, so the waiting overlaps; commits in unit order, as `run`'s.
    A stop cancels the units in flight."""
    started = time.perf_counter()
    executed = Executed()
    pending: deque[tuple[U, asyncio.Task]] = deque()
    source = _counted(units, executed)
    try:
        while True:
            while len(pending) < max(1, width):
                unit = next(source, _END)
                if unit is _END:
                    break
                pending.append((unit, asyncio.ensure_future(work(unit))))
            if not pending:
                break
            unit, task = pending.popleft()
            executed.n_committed += 1
            if commit(unit, await task):
                executed.stopped = True
                break
    finally:
        for _, task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*(t for _, t in pending), return_exceptions=True)
    executed.seconds = time.perf_counter() - started
    return executed


_END = object()


@dataclass(frozen=True)
class Marker(Generic[U]):
    """Resume by part names: a unit is done when `table` holds the part of its name.

    `commit` writes a unit's data parts, then its marker part, all under the unit's name; `done`
    lists the names with a marker; `remove_abandoned` removes the data parts (of `data`, whose
    names start with `prefix`) that have no marker part, once the process that wrote them is
    gone (`writers`): what a kill between the two writes left."""

    lake: Lake
    table: str
    data: tuple[str, ...] = ()

    def done(self) -> set[str]:
        return {_name(p) for p in self.lake.parts(self.table)}

    def commit(
        self,
        name: str,
        marker: pl.DataFrame,
        data: Iterable[tuple[str, pl.DataFrame, dict[str, str] | None]] = (),
    ) -> None:
        for table, frame, partition in data:
            self.lake.write_part(table, frame, part=name, partition=partition)
        self.lake.write_part(self.table, marker, part=name)

    def remove_abandoned(self, prefix: str = "") -> int:
        done = {f"part-{n}.parquet" for n in self.done()}
        marker_dir = self.lake.table_dir(self.table)
        removed = 0
        for table in self.data:
            for path in self.lake.parts(table):
                filename = path.rsplit("/", 1)[-1]
                if filename in done or not filename.startswith(f"part-{prefix}"):
                    continue
                marker = f"{marker_dir}/{filename}"
                if writers.remove_abandoned(
                    self.lake, path, lambda m=marker: not _exists(self.lake, m)
                ):
                    removed += 1
        return removed


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1].removeprefix("part-").removesuffix(".parquet")


def _exists(lake: Lake, path: str) -> bool:
    return lake.fs.get_file_info(path).type != pafs.FileType.NotFound
