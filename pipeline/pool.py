"""Worker process pools whose workers end with the process that started them.

Every pool of worker processes (the executor's `processes` backend: analyse's miner, ingest's
parsers, synth) comes from `process_pool`: spawned, not forked (polars' and DuckDB's threads do
not survive a fork), and each worker set up to end when its parent ends, however the parent
ends. A parent killed with SIGKILL runs no cleanup, and a worker of a `ProcessPoolExecutor` waits
on a queue whose write end it holds itself, so without this it would wait forever (with
multiprocessing's resource tracker, which ends once the last process holding its pipe is gone).

On Linux the kernel sends the worker SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``);
everywhere, a thread in the worker checks once a second that its parent is still the process that
started it, and ends the worker if not.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_SECONDS = 1.0


def process_pool(
    workers: int, initializer: Callable | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes that end with this process; `initializer(*initargs)`
    runs in each worker after that is arranged."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )


def _start_worker(parent: int, initializer: Callable | None, initargs: tuple) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(parent: int) -> None:
    """End this process when process `parent` (its parent) ends."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watch below still ends the worker
            pass
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="watch-parent", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)
