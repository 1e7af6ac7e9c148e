"""Cleanup touches a file only when its writer is gone: a live process's unfinished files and
half-written batches stay, a killed one's go."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl

from pipeline import writers
from pipeline.analyse.run import analyse
from pipeline.analyse.tidy import tidy
from pipeline.lake import Lake
from tests.analyse import builders, domains

ROOT = Path(__file__).resolve().parents[1]

# A writer that leaves a batch half-written (its lessons part, not its analyses part) and a file
# half-written, says so, then waits (to be killed) or ends.
HALF_WRITER = """
import sys, time
import polars as pl
from pipeline import writers
from pipeline.lake import Lake
lake = Lake(sys.argv[1])
lessons = pl.read_parquet(sys.argv[2])
lake.write_part("lessons", lessons, part="in-flight")
directory = lake.table_dir("lessons")
with open(writers.temp_path(lake, directory, "part-next"), "wb") as fh:
    fh.write(b"PAR1 half a part")
print("ready", flush=True)
if sys.argv[3] == "wait":
    time.sleep(600)
"""


def _lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    builders.write(lake, domains.shop_runs())
    analyse(lake)
    return lake


def _half_writer(tmp_path: Path, lake: Lake, mode: str) -> subprocess.Popen:
    sample = tmp_path / "lessons.parquet"
    lake.read("lessons").head(3).write_parquet(sample)
    proc = subprocess.Popen(
        [sys.executable, "-c", HALF_WRITER, lake.uri, str(sample), mode],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _unfinished(lake: Lake) -> list[str]:
    return sorted(p.name for p in Path(lake.base).rglob(".*.tmp"))


def test_a_part_names_its_writer_and_the_writer_holds_its_lock(tmp_path):
    lake = Lake(tmp_path / "lake")
    builders.write(lake, domains.shop_runs())
    me = writers.writer_id(lake)
    [path, *_] = lake.parts("trajectories")
    assert writers.writer_of_part(lake, path) == me
    assert (tmp_path / "lake" / "_writers" / f"{me}.lock").is_file()
    assert not writers.is_gone(lake, me)
    assert writers.sweep(lake) == 0 and (tmp_path / "lake" / "_writers" / f"{me}.lock").is_file()


def test_a_live_writers_batch_stays_and_a_killed_ones_goes(tmp_path):
    lake = _lake(tmp_path)
    before = lake.read("lessons").height
    proc = _half_writer(tmp_path, lake, "wait")
    try:
        [path] = [p for p in lake.parts("lessons") if p.endswith("part-in-flight.parquet")]
        writer = writers.writer_of_part(lake, path)
        assert not writers.is_gone(lake, writer)
        done = tidy(lake)
        assert done["lessons parts without their analyses part"] == 0
        assert done["unfinished files"] == 0
        assert path in lake.parts("lessons") and len(_unfinished(lake)) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert writers.is_gone(lake, writer)
    done = tidy(lake)
    assert done["lessons parts without their analyses part"] == 1
    assert done["unfinished files"] == 1
    assert path not in lake.parts("lessons") and _unfinished(lake) == []
    assert lake.read("lessons").height == before
    assert not (tmp_path / "lake" / "_writers" / f"{writer}.lock").exists()


def test_a_part_rewritten_by_a_live_writer_meanwhile_is_kept(tmp_path):
    lake = _lake(tmp_path)
    _half_writer(tmp_path, lake, "end").wait()
    [path] = [p for p in lake.parts("lessons") if p.endswith("part-in-flight.parquet")]
    dead = writers.writer_of_part(lake, path)
    assert writers.is_gone(lake, dead)
    mine = lake.read("lessons").tail(2)

    def rewritten_meanwhile() -> bool:  # a live writer redoes the same batch after the check
        lake.write_part("lessons", mine, part="in-flight")
        return True

    assert not writers.remove_abandoned(lake, path, rewritten_meanwhile)
    assert writers.writer_of_part(lake, path) == writers.writer_id(lake)
    kept = pl.read_parquet(path)
    assert sorted(kept["lesson_id"]) == sorted(mine["lesson_id"])
    assert not [n for n in _unfinished(lake) if n.startswith(".part-in-flight")]
    # and once nothing rewrites it, a dead writer's batch goes
    _half_writer(tmp_path, lake, "end").wait()
    assert writers.remove_abandoned(lake, path, lambda: True)
    assert path not in lake.parts("lessons")
    assert not [n for n in _unfinished(lake) if n.startswith(".part-in-flight")]


def test_unfinished_files_not_named_by_a_writer_are_left_alone(tmp_path):
    lake = _lake(tmp_path)
    other = Path(lake.table_dir("lessons")) / ".part-x.0123456789abcdef0123456789abcdef.tmp"
    other.write_bytes(b"PAR1")
    assert writers.sweep(lake) == 0 and other.exists()
