"""Expose a skill folder at OUT in one atomic step, one writer at a time, recovering from a crash.

OUT is a symbolic link to a complete version of the skill, `.OUT.versions/<version>/<name>/`
beside it (the version's folder carries the skill's name too, so a reader that resolves the link
still finds a folder named after the skill). A new version is staged in a temporary sibling,
moved whole into `.OUT.versions/`, and exposed by replacing the link with a new one through
`os.replace`: a reader sees the previous skill or the new one, never a half-written or missing
folder. The version replaced is kept until the next run, so a reader that resolved the link a
moment earlier still reads whole files; older versions are removed. An OUT that is a real folder
(written by an earlier trace2skill, or by hand) becomes that previous version.

`writer_lock(OUT)` holds an OS lock on `.OUT.lock` for a whole run: a second writer to the same OUT
fails at once with a message naming OUT. `recover(OUT)`, under the lock at the start of a run,
removes what an interrupted run left beside OUT and, if OUT is missing, restores the newest
complete version (or the folder an earlier trace2skill had moved aside).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.skill.folder import SKILL_FILE, SkillError


def versions_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.versions"


def lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


@contextmanager
def writer_lock(out: Path) -> Iterator[None]:
    """Hold the lock on `.OUT.lock` or fail at once naming OUT and the process that holds it.

    The lock is released when the process ends, however it ends; the file stays (removing it
    would let two writers lock two different files)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(out), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise SkillError(
                f"{out} is being written by another consolidation"
                + (f" (process {holder})" if holder else "")
                + f"; wait for it to finish or write to another folder (lock: {lock_path(out)})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def current_version(out: Path) -> str | None:
    """The version OUT links to, None when OUT is not a link (missing, or a real folder).

    A link anywhere else, or anything but a folder or a link, is refused: it is not ours to
    replace."""
    if out.is_symlink():
        target = Path(os.readlink(out))
        parts = target.parts
        if len(parts) == 3 and parts[0] == versions_dir(out).name and parts[2] == out.name:
            return parts[1]
        raise SkillError(
            f"{out} is a link to {target}, not to a version of the skill written by "
            "trace2skill; refusing to replace it (remove it or write to another folder)"
        )
    if out.exists() and not out.is_dir():
        raise SkillError(f"{out} exists and is not a folder; refusing to replace it")
    return None


def _complete_versions(out: Path) -> list[str]:
    """Versions whose folder is whole (it arrives by one rename), oldest first."""
    root = versions_dir(out)
    if not root.is_dir():
        return []
    return sorted(v.name for v in root.iterdir() if (v / out.name / SKILL_FILE).is_file())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _prune(out: Path, keep: set[str]) -> None:
    root = versions_dir(out)
    if root.is_dir():
        for v in root.iterdir():
            if v.name not in keep:
                _remove(v)


def _link(out: Path, version: str) -> None:
    """Point OUT at `version` in one step: a new link under a temporary name, renamed over OUT."""
    link = out.parent / f".{out.name}.link-{uuid.uuid4().hex[:8]}"
    os.symlink(Path(versions_dir(out).name, version, out.name), link)
    os.replace(link, out)
    _fsync_dir(out.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def recover(out: Path) -> list[str]:
    """Clean up after an interrupted run (call it holding `writer_lock`); says what it did.

    Removes temporary folders and links beside OUT and versions OUT does not link to; if OUT is
    missing, restores the newest complete version, else a folder moved aside by an earlier
    trace2skill (`.OUT.old-*`)."""
    done: list[str] = []
    if not out.parent.is_dir():
        return done
    current_version(out)  # refuses an OUT that is not ours before anything is touched
    prefix = f".{out.name}."
    leftovers = [p for p in out.parent.iterdir() if p.name.startswith(prefix)]
    moved_aside = sorted(
        (p for p in leftovers if p.name.startswith(prefix + "old-")),
        key=lambda p: p.stat().st_mtime,
    )
    missing = not out.exists()  # absent, or a link to a version that is gone
    versions = _complete_versions(out)
    if missing and versions:
        _link(out, versions[-1])
        done.append(f"{out} was missing after an interrupted run: restored version {versions[-1]}")
    elif (
        missing
        and not out.is_symlink()
        and moved_aside
        and (moved_aside[-1] / SKILL_FILE).is_file()
    ):
        os.replace(moved_aside.pop(), out)
        done.append(f"{out} was missing after an interrupted run: restored the previous folder")
    for p in leftovers:
        if p.exists() or p.is_symlink():
            if any(p.name.startswith(prefix + kind) for kind in ("tmp-", "link-", "old-")):
                _remove(p)
                done.append(f"removed {p}, left by an interrupted run")
    keep = current_version(out)
    _prune(out, {keep} if keep else set())
    return done


def publish(staged: Path, out: Path, run_id: str) -> Path:
    """Make the complete folder `staged` the skill at OUT (call it holding `writer_lock`)."""
    root = versions_dir(out)
    version = f"{_stamp(dt.datetime.now(dt.UTC))}-{run_id}"
    previous = current_version(out)
    (root / version).mkdir(parents=True)
    os.replace(staged, root / version / out.name)
    if previous is None and out.is_dir():  # a real folder: it becomes the previous version
        written_at = min(out.stat().st_mtime, dt.datetime.now(dt.UTC).timestamp())
        previous = f"{_stamp(dt.datetime.fromtimestamp(written_at, dt.UTC))}-folder"
        (root / previous).mkdir()
        os.replace(out, root / previous / out.name)
    _fsync_dir(root)
    _link(out, version)
    _prune(out, {version, previous} - {None})
    return out
