"""Read one raw file into frames: the unit of work a worker process does.

``read_file`` never raises for bad input: a file that cannot be read at all comes back as
``failed`` with the reason, bad records come back inside the frames' error list. A file whose
bytes and reading settings match its previous ingest comes back ``unchanged`` without parsing.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest import formats
from pipeline.ingest.discover import FileTask
from pipeline.ingest.formats import ReadContext
from pipeline.ingest.frames import FileFrames, build_frames
from pipeline.ingest.labels import Labels
from pipeline.ingest.rawfile import FileError, RawFile


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs besides the file (pickled once per worker process)."""

    format: str  # "auto", an adapter name, or "mapping"
    ctx: ReadContext
    labels: Labels | None
    digest: str  # settings digest recorded in ingest_files
    ingested_at: dt.datetime


@dataclass
class FileResult:
    task: FileTask
    status: str  # read / unchanged / failed / ignored
    format: str | None = None
    detected_by: str | None = None  # content / forced
    sha256: str | None = None
    frames: FileFrames | None = None
    error: str | None = None
    seconds: float = 0.0


def read_file(task: FileTask, settings: Settings) -> FileResult:
    started = time.perf_counter()
    result = _read(task, settings)
    result.seconds = time.perf_counter() - started
    return result


def _read(task: FileTask, settings: Settings) -> FileResult:
    try:
        raw = RawFile.read(Path(task.resolved), task.path)
    except OSError as exc:
        return FileResult(task, "failed", error=f"cannot read the file: {exc.strerror or exc}")
    prev = task.previous
    sha = raw.sha256
    if prev is not None and prev.sha256 == sha and prev.settings_digest == settings.digest:
        return FileResult(task, "unchanged", format=prev.format, detected_by="previous", sha256=sha)
    if not raw.data.strip():
        return FileResult(task, "failed", sha256=sha, error="the file is empty")
    try:
        if settings.format == "auto":
            name, how = formats.detect(raw), "content"
            if name is None:
                what = _describe(raw)
                status = "failed" if task.explicit else "ignored"
                return FileResult(
                    task, status, sha256=sha,
                    error=f"format not recognised ({what}); name it with --format "
                    f"({', '.join(formats.NAMES)}) or describe it with --mapping FILE",
                )  # fmt: skip
        else:
            name, how = settings.format, "forced"
        adapter = formats.adapter(name)
        frames = build_frames(
            adapter.read(raw, settings.ctx),
            source=task.source,
            file=task.path,
            file_sha256=sha,
            format=name,
            ingested_at=settings.ingested_at,
            labels=settings.labels,
        )
    except FileError as exc:
        return FileResult(task, "failed", sha256=sha, error=str(exc))
    return FileResult(task, "read", format=name, detected_by=how, sha256=sha, frames=frames)


def _describe(raw: RawFile) -> str:
    try:
        if raw.is_parquet:
            return "a Parquet file without trajectory columns"
        if raw.is_jsonl:
            return "JSON lines of an unknown shape"
        if raw.looks_like_json:
            return "JSON of an unknown shape"
        return "text without Question/Thought/Action lines"
    except FileError as exc:
        return str(exc)
