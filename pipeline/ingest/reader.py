"""Read one raw file into frames: the unit of work a worker process does.

``read_file`` never raises for bad input: a file that cannot be read at all comes back as
``failed`` with the reason, bad records come back inside the frames' error list. That holds for
pathological files too (nesting deeper than Python can follow, a file too large for memory, a
fault no rule foresaw): the file fails with the reason and the other files are read. A file
whose bytes and reading settings match its previous ingest comes back ``unchanged`` without
parsing.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.ids import digest, file_sha256
from pipeline.ingest import formats
from pipeline.ingest.discover import FileTask
from pipeline.ingest.formats import ReadContext, native
from pipeline.ingest.frames import FileFrames, build_frames, validate_frames
from pipeline.ingest.labels import Labels
from pipeline.ingest.rawfile import FileError, RawFile, TooDeep


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
    settings_digest: str = ""  # the settings, plus the companion file's bytes where there is one
    frames: FileFrames | None = None
    error: str | None = None
    seconds: float = 0.0


def read_file(task: FileTask, settings: Settings) -> FileResult:
    """Read and parse one file (in a worker process)."""
    started = time.perf_counter()
    try:
        result = _read(task, settings)
    except RecursionError:  # nesting the JSON parser took but a reader's walk over it did not
        result = FileResult(task, "failed", error=str(TooDeep()))
    except MemoryError:
        result = FileResult(
            task, "failed",
            error=f"too large to read in memory ({task.size / 1e6:,.0f} MB): split it into "
            "smaller files",
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 (one hostile file must not stop the whole ingest)
        result = FileResult(
            task, "failed", error=f"could not be read ({type(exc).__name__}: {str(exc)[:200]})"
        )
    result.seconds = time.perf_counter() - started
    return result


def _read(task: FileTask, settings: Settings) -> FileResult:
    try:
        raw = RawFile.read(Path(task.resolved), task.path)
    except OSError as exc:
        return FileResult(task, "failed", error=f"cannot read the file: {exc.strerror or exc}")
    try:
        result = _parse(task, settings, raw)
        result.settings_digest = file_settings(raw.path, raw.is_parquet, settings)
    except FileError as exc:
        result = FileResult(task, "failed", error=str(exc))
    result.sha256 = raw.sha256
    return result


def read_batch(tasks: list[FileTask], settings: Settings) -> list[FileResult]:
    """Read several files, then check all their rows against the schemas at once."""
    results = [read_file(task, settings) for task in tasks]
    parsed = [r for r in results if r.status == "read"]
    for result, problem in zip(parsed, validate_frames([r.frames for r in parsed]), strict=True):
        if problem:
            result.status, result.error, result.frames = "failed", problem, None
    return results


def file_settings(path: Path, is_parquet: bool, settings: Settings) -> str:
    """The settings digest of one file: a Parquet steps file adds its companion's bytes."""
    companion = native.companion_sha(path) if is_parquet else None
    return digest(settings.digest, companion) if companion else settings.digest


def check_unchanged(task: FileTask, settings: Settings) -> FileResult | None:
    """The file's result if its bytes and settings match its last ingest (hashing only, no
    parsing: done before any worker starts); None when it must be read."""
    prev = task.previous
    if prev is None:
        return None
    try:
        sha = file_sha256(task.resolved)
        with open(task.resolved, "rb") as fh:
            is_parquet = fh.read(4) == b"PAR1"
        fs = file_settings(Path(task.resolved), is_parquet, settings)
    except (OSError, FileError):
        return None  # the read reports it
    if sha != prev.sha256 or fs != prev.settings_digest:
        return None
    return FileResult(
        task, "unchanged", format=prev.format, detected_by="previous", sha256=sha,
        settings_digest=fs,
    )  # fmt: skip


def _parse(task: FileTask, settings: Settings, raw: RawFile) -> FileResult:
    sha = raw.sha256
    if not raw.data[:65536].strip() and not raw.data.strip():
        return FileResult(task, "failed", error="the file is empty")
    name = None
    try:
        if settings.format == "auto":
            name, how = formats.detect(raw), "content"
            if name is None and raw.too_deep:
                raise FileError(str(TooDeep()))
            if name is None:
                what = _describe(raw)
                status = "failed" if task.explicit else "ignored"
                return FileResult(
                    task, status,
                    error=f"format not recognised ({what}); name it with --format "
                    f"({', '.join(formats.names())}) or describe it with --mapping FILE",
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
        hint = ""
        if settings.format != "auto":
            hint = f" (read as {settings.format}, as --format asked; --format auto detects it)"
        return FileResult(task, "failed", format=name, error=f"{exc}{hint}")
    except native.Companion as exc:
        return FileResult(task, "ignored", format=name, error=str(exc))
    return FileResult(task, "read", format=name, detected_by=how, frames=frames)


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
