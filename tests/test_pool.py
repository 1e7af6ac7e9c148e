"""Worker processes end with the process that started them, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.lake import Lake
from tests.analyse import builders, domains
from tests.analyse.test_run import extra_runs

ROOT = Path(__file__).resolve().parents[1]
PROC = Path("/proc")

pytestmark = pytest.mark.skipif(not PROC.is_dir(), reason="reads processes from /proc")


def _children(pid: int) -> dict[int, str]:
    """Live child processes of `pid`: pid -> command line."""
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int) -> bool:
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_analyse_leaves_no_worker_process(tmp_path):
    lake = Lake(tmp_path / "lake")
    builders.write(lake, domains.shop_runs() + domains.qa_runs() + extra_runs(300))
    command = [sys.executable, "-m", "pipeline.cli", "analyse", "--lake", lake.uri]
    proc = subprocess.Popen(
        [*command, "--workers", "2", "--batch-size", "1"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            children = _children(proc.pid)
            if sum("spawn_main" in c for c in children.values()) >= 2:
                break
            assert proc.poll() is None, "analyse ended before its workers started"
            assert time.monotonic() < deadline, "the worker processes did not start"
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30  # a bound, not a measure: they end within a second or two
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: cmd for pid, cmd in children.items() if _alive(pid)}
    for pid in left:  # leave the machine clean even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes outlived the killed analyse: {left}"
