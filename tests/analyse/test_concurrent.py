"""Several processes on one lake: an analyse that writes while no-op analyses start and tidy
the lake over and over keeps every lesson a single run writes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from pipeline.analyse.run import analyse
from pipeline.lake import Lake
from tests.analyse import builders, domains
from tests.analyse.test_run import extra_runs

ROOT = Path(__file__).resolve().parents[2]

# A process that runs no-op analyses (nothing selected: each only tidies the lake) until told
# to stop, counting them in a file so that the test knows it is running.
NO_OP_LOOP = """
import sys
from pathlib import Path
from pipeline.analyse.run import analyse
from pipeline.lake import Lake
lake, stop, count = Lake(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
n = 0
while not stop.exists():
    analyse(lake, where="1=0")
    n += 1
    count.write_text(str(n))
"""

LESSON_COLUMNS = ["lesson_id", "analysis_id", "trajectory_id", "kind", "title", "content", "rule"]


def _lake(tmp_path: Path, name: str) -> Lake:
    lake = Lake(tmp_path / name)
    runs = domains.shop_runs() + domains.qa_runs() + domains.code_runs() + extra_runs(60)
    builders.write(lake, runs)
    return lake


def _lessons(lake: Lake) -> pl.DataFrame:
    return lake.read("lessons").select(LESSON_COLUMNS).sort("lesson_id")


def test_no_op_analyses_in_a_loop_cost_a_writer_no_lesson(tmp_path):
    single = _lake(tmp_path, "single")
    analyse(single, batch_size=1)
    expected = _lessons(single)

    lake = _lake(tmp_path, "shared")
    stop, count = tmp_path / "stop", tmp_path / "count"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    loops = [
        subprocess.Popen(
            [sys.executable, "-c", NO_OP_LOOP, lake.uri, str(stop), f"{count}{k}"], env=env
        )
        for k in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(Path(f"{count}{k}").exists() for k in range(2)):
            assert time.monotonic() < deadline, "the no-op analyses did not start"
            assert all(p.poll() is None for p in loops), "a no-op analyse failed"
            time.sleep(0.05)
        summary = analyse(lake, batch_size=1)
    finally:
        stop.touch()
        codes = [p.wait(timeout=60) for p in loops]
    assert summary.n_failed == 0
    assert lake.read("analyses").height == single.read("analyses").height
    kept = _lessons(lake)
    assert kept.height == expected.height, f"{expected.height - kept.height} lessons lost"
    assert kept.equals(expected)
    assert codes == [0, 0], "a no-op analyse failed"
    assert sum(int(Path(f"{count}{k}").read_text()) for k in range(2)) > 2
