"""Who is writing a lake, and whether they are still there.

Every process that writes a lake is a writer with an id (``<pid>-<12 hex>``). The id is in the
name of each of its unfinished files (``.part-<name>.<writer>.<random>.tmp``) and in the footer
of each part it writes (schema metadata ``writer``). On a local lake the writer holds an
exclusive ``flock`` on ``LAKE/_writers/<writer>.lock`` for as long as it lives; the kernel drops
the lock when the process ends, however it ends (kill -9 included). So "is this writer gone?"
has an exact answer: its lock file is missing, or its lock can be taken.

Cleanup follows one rule, for every table and every stage: it touches a file only when the file's
writer is gone. `sweep` removes the unfinished files of gone writers and their lock files;
`remove_abandoned` removes a finished part that a gone writer left incomplete (analyse's lessons
part without its analyses part), and never a part another process is still writing or has just
rewritten.

An object-store lake has no lock a process on another machine could see, so there a writer
counts as gone once its part is older than `OBJECT_STORE_GRACE`. A lease (a heartbeat object each
writer rewrites) was the alternative; it would need a thread in every process and Ray actor
uploading to the bucket, and the gap the rule must cover is short: between the two parts of a
batch, written one after the other, not the batch's analysis. An hour covers that gap and any
clock skew with the store. Object stores have no unfinished files (a part is one upload).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from pathlib import Path

try:
    import fcntl
except ImportError:  # no flock (Windows): the object-store rule applies to local lakes too
    fcntl = None

FOLDER = "_writers"
LOCK_SUFFIX = ".lock"
TMP_SUFFIX = ".tmp"
METADATA_KEY = b"writer"
OBJECT_STORE_GRACE = dt.timedelta(hours=1)
_ID = re.compile(r"^\d+-[0-9a-f]{12}$")

# lake folder -> (pid, writer id, open locked file); a forked child registers anew.
_REGISTERED: dict[str, tuple[int, str, object]] = {}


def _lock_dir(lake) -> Path:
    return Path(lake.path(FOLDER))


def writer_id(lake) -> str:
    """This process's writer id for `lake`, registering it on first use: on a local lake the
    lock file is created and locked before any file names the id."""
    known = _REGISTERED.get(lake.base)
    if known is not None and known[0] == os.getpid():
        return known[1]
    while True:
        wid = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        handle = None
        if lake.is_local and fcntl is not None:
            handle = _lock(_lock_dir(lake) / f"{wid}{LOCK_SUFFIX}")
            if handle is None:  # a sweep took the new file for a dead writer's: another id
                continue
        _REGISTERED[lake.base] = (os.getpid(), wid, handle)
        return wid


def _lock(path: Path):
    """Create `path` and hold its lock; None when a sweep removed the file before it was locked
    (the lock would then be on a file nobody can find)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "x")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        handle.close()
        return None
    return handle


def temp_path(lake, directory: str, name: str) -> str:
    """Where this writer writes `name` in `directory` before renaming it into place."""
    return f"{directory}/.{name}.{writer_id(lake)}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}"


def writer_of_temp(filename: str) -> str | None:
    """The writer named by an unfinished file's name; None for any other file."""
    if not (filename.startswith(".") and filename.endswith(TMP_SUFFIX)):
        return None
    pieces = filename.rsplit(".", 3)
    return pieces[1] if len(pieces) == 4 and _ID.match(pieces[1]) else None


def writer_of_part(lake, path: str) -> str | None:
    """The writer recorded in a part's footer (None for parts written before writers were
    recorded); FileNotFoundError when the part is gone."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path, filesystem=lake.fs).metadata or {}
    value = metadata.get(METADATA_KEY)
    return value.decode() if value else None


def is_gone(lake, writer: str | None) -> bool:
    """Whether `writer` has ended (local lakes). An unknown writer (an older part) counts as
    gone, as before writers were recorded."""
    if writer is None:
        return True
    own = _REGISTERED.get(lake.base)
    if own is not None and own[0] == os.getpid() and own[1] == writer:
        return False
    if fcntl is None:
        return False  # cannot tell: see `remove_abandoned`
    try:
        handle = open(_lock_dir(lake) / f"{writer}{LOCK_SUFFIX}")
    except FileNotFoundError:
        return True
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


def sweep(lake) -> int:
    """Remove the unfinished files of writers that are gone, then their lock files; how many
    unfinished files that was. Files of live writers stay; a file no writer names (written
    before writers were named) goes once it is older than `OBJECT_STORE_GRACE`, longer than
    any write takes."""
    if not lake.is_local or fcntl is None or not Path(lake.base).is_dir():
        return 0
    n, cutoff = 0, (dt.datetime.now() - OBJECT_STORE_GRACE).timestamp()
    for path in Path(lake.base).rglob(f".*{TMP_SUFFIX}"):
        writer = writer_of_temp(path.name)
        try:
            gone = is_gone(lake, writer) if writer else path.stat().st_mtime < cutoff
        except FileNotFoundError:  # renamed into place or removed meanwhile
            continue
        if gone:
            path.unlink(missing_ok=True)
            n += 1
    folder = _lock_dir(lake)
    for path in folder.glob(f"*{LOCK_SUFFIX}") if folder.is_dir() else []:
        try:
            handle = open(path)
        except FileNotFoundError:
            continue
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # alive (this process's own lock included)
            path.unlink(missing_ok=True)  # while holding its lock: see `_lock`
    return n


def remove_abandoned(lake, path: str, still_abandoned) -> bool:
    """Remove the part at `path` if its writer is gone and `still_abandoned()` (asked after that)
    holds; True if removed. A part rewritten meanwhile by a live writer is left in place."""
    try:
        if not lake.is_local or fcntl is None:  # no lock to ask: the part's age decides
            info = lake.fs.get_file_info(path)
            age = dt.datetime.now(dt.UTC) - info.mtime.astimezone(dt.UTC)
            if age < OBJECT_STORE_GRACE or not still_abandoned():
                return False
            lake.fs.delete_file(path)
            return True
        writer = writer_of_part(lake, path)
        if not is_gone(lake, writer) or not still_abandoned():
            return False
        # Take the part out of sight under a name of this writer, then look at what was taken:
        # a live writer may have written the same part since its footer was read.
        directory, name = path.rsplit("/", 1)
        taken = temp_path(lake, directory, name)
        os.rename(path, taken)
    except FileNotFoundError:
        return False  # another process removed it first
    try:
        if writer_of_part(lake, taken) == writer:
            return True
        try:
            os.link(taken, path)  # put back, unless a newer part of that name is there already
        except FileExistsError:
            pass
        return False
    finally:
        os.unlink(taken)
