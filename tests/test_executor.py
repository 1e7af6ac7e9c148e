"""The executor: commits in unit order on every backend, a commit can stop the run, and a unit is
done when its marker part exists (a gone writer's data parts without one are removed)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from pipeline import executor, schemas
from pipeline.lake import Lake

ROOT = Path(__file__).resolve().parents[1]


def slow_square(n: int) -> int:
    time.sleep(0.02 * (n % 3))  # later units often finish first
    return n * n


def _run(backend, units, stop_at=None):
    seen = []

    def commit(unit, result):
        seen.append((unit, result))
        return unit == stop_at

    return executor.run(units, backend, commit), seen


def test_every_backend_commits_in_unit_order():
    units = list(range(12))
    want = [(n, n * n) for n in units]
    here, seen_here = _run(executor.here(slow_square), units)
    pooled, seen_pooled = _run(executor.processes(slow_square, 2), units)
    assert seen_here == seen_pooled == want
    assert (here.n_units, here.n_committed, here.stopped) == (12, 12, False)
    assert (pooled.n_units, pooled.n_committed) == (12, 12)


def test_a_commit_that_asks_to_stop_ends_the_run_and_the_pool():
    done, seen = _run(executor.processes(slow_square, 2), range(100), stop_at=3)
    assert [u for u, _ in seen] == [0, 1, 2, 3]
    assert done.stopped and done.n_committed == 4
    assert done.n_units < 100  # the read-ahead is bounded: the rest was never started


def test_async_work_overlaps_and_still_commits_in_order():
    finished, seen = [], []

    async def work(n: int) -> int:
        await asyncio.sleep(0.01 * (5 - n))  # the last unit finishes first
        finished.append(n)
        return -n

    def commit(unit, result):
        seen.append((unit, result))
        return False

    done = asyncio.run(executor.run_async(range(6), work, commit, width=6))
    assert seen == [(n, -n) for n in range(6)]
    assert finished[0] == 5  # they ran together
    assert done.n_committed == 6 and not done.stopped


def test_an_async_stop_cancels_the_units_in_flight():
    started, seen = [], []

    async def work(n: int) -> int:
        started.append(n)
        await asyncio.sleep(0.01 if n == 0 else 5)
        return n

    def commit(unit, result):
        seen.append(unit)
        return True

    t0 = time.perf_counter()
    done = asyncio.run(executor.run_async(range(10), work, commit, width=3))
    assert seen == [0] and done.stopped and started == [0, 1, 2]
    assert time.perf_counter() - t0 < 4  # the units in flight were cancelled, not awaited


def _steps():
    return schemas.empty("steps")


WRITE_AND_EXIT = """
import sys
import polars as pl
from pipeline import schemas
from pipeline.lake import Lake
lake = Lake(sys.argv[1])
lake.write_part("steps", schemas.empty("steps"), part=sys.argv[2], partition={"source": "s"})
"""


def test_a_marker_names_what_is_done_and_what_a_gone_writer_abandoned(tmp_path):
    lake = Lake(tmp_path / "lake")
    marker = executor.Marker(lake, "eval_results", ("steps",))
    marker.commit(
        "e1-a-0000", schemas.empty("eval_results"), [("steps", _steps(), {"source": "s"})]
    )
    assert marker.done() == {"e1-a-0000"}
    for name in ("e1-a-0001", "e2-a-0000"):  # data written, the marker never was
        subprocess.run(
            [sys.executable, "-c", WRITE_AND_EXIT, lake.uri, name],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
        )
    lake.write_part(
        "steps", _steps(), part="e1-a-0002", partition={"source": "s"}
    )  # a live writer's (this process) stays
    assert marker.remove_abandoned(prefix="e1-") == 1
    names = sorted(p.rsplit("/", 1)[-1] for p in lake.parts("steps"))
    assert names == ["part-e1-a-0000.parquet", "part-e1-a-0002.parquet", "part-e2-a-0000.parquet"]
