"""Which raw files an ingest reads: paths given on the command line, folders walked recursively.

Folders are walked in sorted order; hidden files and folders (a name starting with ".") and the
lake being written are skipped, and so are files whose suffix no format uses (`formats.suffixes`:
a folder of runs often holds configs, logs and reports too). Files named explicitly are always
read. A folder that cannot be listed (no permission) is a problem of the path given, naming that
folder: its files are not silently lost.

Each file gets its source (``--source``, else the name of the folder given, or of the folder
holding the file given) and its key: a digest of its resolved path and source, which names its
parts in the lake.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.ids import digest
from pipeline.ingest import formats
from pipeline.lake import Lake

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class FileTask:
    """One raw file to read."""

    path: str  # as the user will recognise it (given, or found under a given folder)
    resolved: str
    source: str
    file_key: str
    explicit: bool
    size: int
    previous: object = None  # the file's latest ingest_files row (run.Previous), if any


@dataclass
class Discovery:
    tasks: list[FileTask] = field(default_factory=list)
    # (path given, "-" or the folder under it that could not be listed, error)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    n_ignored: int = 0  # files in walked folders with no trajectory suffix
    n_unreadable_folders: int = 0


def source_name(name: str) -> str:
    """A partition-safe source name: letters, digits, '.', '_' and '-'."""
    cleaned = _UNSAFE.sub("-", name).strip("-.")
    return cleaned or "default"


def file_key(resolved: str, source: str) -> str:
    return digest("file", resolved, source)


def discover(paths: list[str | Path], lake: Lake | None, source: str | None) -> Discovery:
    found = Discovery()
    lake_root = Path(lake.base) if lake is not None and lake.is_local else None
    seen: set[str] = set()
    suffixes = formats.suffixes()
    for given in paths:
        p = Path(given)
        if not p.exists():
            found.problems.append((str(given), "-", "no such file or folder"))
            continue
        resolved = p.resolve()
        src = (
            source_name(source)
            if source
            else source_name(resolved.name if resolved.is_dir() else resolved.parent.name)
        )
        if resolved.is_file():
            _add(found, seen, str(given), resolved, src, explicit=True)
            continue
        if not resolved.is_dir():
            found.problems.append((str(given), "-", "not a regular file or folder"))
            continue
        n_before = len(found.tasks)
        n_problems = len(found.problems)
        for f in sorted(_walk(found, str(given), resolved, lake_root)):
            if not f.name.lower().endswith(suffixes):
                found.n_ignored += 1
                continue
            _add(found, seen, str(Path(given) / f.relative_to(resolved)), f, src, explicit=False)
        if len(found.tasks) == n_before and len(found.problems) == n_problems:
            found.problems.append(
                (
                    str(given),
                    "-",
                    f"no trajectory files in this folder (looked for {', '.join(suffixes)})",
                )
            )
    return found


def _walk(found: Discovery, given: str, root: Path, lake_root: Path | None) -> list[Path]:
    """Every file under `root` but hidden ones and the lake's; a folder that cannot be listed
    (or an entry that cannot be looked at) is recorded as a problem of `given`."""

    def unreadable(exc: OSError, is_folder: bool = True) -> None:
        where = Path(exc.filename or root)
        found.n_unreadable_folders += is_folder
        what = "this folder" if is_folder else "this file"
        lost = "its files were not ingested" if is_folder else "it was not ingested"
        found.problems.append(
            (given, "-" if where == root else str(Path(given) / where.relative_to(root)),
             f"cannot read {what} ({exc.strerror or exc}): {lost}; give read permission and "
             "ingest again")
        )  # fmt: skip

    if lake_root is not None and (root == lake_root or lake_root in root.parents):
        return []
    files = []
    for folder, dirs, names in os.walk(root, onerror=unreadable):
        here = Path(folder)
        dirs[:] = [
            d for d in dirs
            if not d.startswith(".") and (lake_root is None or here / d != lake_root)
        ]  # fmt: skip
        for name in names:
            try:
                if not name.startswith(".") and (here / name).is_file():
                    files.append(here / name)
            except OSError as exc:  # a folder that may be listed but not entered
                unreadable(exc, is_folder=False)
    return files


def _add(found: Discovery, seen: set[str], shown: str, resolved: Path, src: str, explicit: bool):
    key = str(resolved)
    if key in seen:  # the same file reached twice (a file and its folder both given)
        return
    seen.add(key)
    found.tasks.append(
        FileTask(
            path=shown,
            resolved=key,
            source=src,
            file_key=file_key(key, src),
            explicit=explicit,
            size=resolved.stat().st_size,
        )
    )
