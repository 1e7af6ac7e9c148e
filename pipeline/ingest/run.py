"""`ingest_paths`: raw files and folders -> LAKE/trajectories, steps, ingest_files, ingest_errors.

Reads: the raw files, the lake's ``ingest_files`` (what each file was last read as) and the ids
of ``trajectories`` (to drop a run already ingested from another file). Writes, per raw file,
one part named by the file's key in ``trajectories`` and in ``steps`` (replacing the file's old
rows; the parts of the same path under another source are removed), one part of its bad records
in ``ingest_errors``; and one ``ingest_files`` part per batch of files (below).

Files are read in batches of consecutive files, the executor's units (`pipeline.executor`): in
this process, or in worker processes when there are enough bytes to parse; the results are
committed in file order, so the outcome does not depend on timing, and the parent only dedupes
across files and writes. A batch's commit writes its files' parts, then its ``ingest_files``
rows: the marker that makes a rerun skip those files. A file whose sha256 and reading settings
match its last ``ingest_files`` row is skipped without parsing, so a killed ingest resumes after
the last batch it committed. Unfinished part files an interrupted writer left are removed first
(``writers.sweep``).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline import audits, executor, writers
from pipeline.console import Console
from pipeline.errors import UserError
from pipeline.ids import digest
from pipeline.ingest import formats
from pipeline.ingest.discover import FileTask, discover
from pipeline.ingest.formats import ReadContext
from pipeline.ingest.labels import LabelsError, load_labels
from pipeline.ingest.lakestate import LakeState
from pipeline.ingest.reader import FileResult, Settings, check_unchanged, read_batch
from pipeline.lake import Lake

EXIT_OK = 0  # every file and record was read
EXIT_PARTIAL = 3  # some records or files were skipped (see ingest_errors)
EXIT_NOTHING = 4  # nothing could be read
ADAPTER_VERSION = "2"  # bump when an adapter's output changes: unchanged files are re-read
POOL_MIN_BYTES = 64 << 20  # below this, starting workers (~1 s each) costs more than it saves
BATCH_BYTES = 16 << 20  # files read and checked together, up to this size ...
BATCH_FILES = 256  # ... or this many files


class IngestError(UserError, ValueError):
    """The ingest cannot start (bad option, unreadable labels or mapping file)."""


@dataclass
class FileReport:
    file: str
    source: str
    format: str | None
    detected_by: str | None
    status: str  # ingested / replaced / unchanged / failed / ignored
    n_trajectories: int = 0
    n_steps: int = 0
    n_skipped: int = 0
    n_duplicates: int = 0
    n_labelled: int = 0
    size_bytes: int = 0
    seconds: float = 0.0


@dataclass
class Problem:
    file: str
    record: str
    error: str


@dataclass
class IngestSummary:
    files: list[FileReport] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)  # skipped records and unreadable files
    duplicates: list[Problem] = field(default_factory=list)
    ignored: list[Problem] = field(default_factory=list)  # walked files of no known format
    n_ignored_suffix: int = 0
    n_unreadable_folders: int = 0  # walked folders that could not be listed (in errors too)
    seconds: float = 0.0

    def total(self, attr: str, statuses=("ingested", "replaced", "unchanged")) -> int:
        return sum(getattr(f, attr) for f in self.files if f.status in statuses)

    @property
    def n_trajectories(self) -> int:
        return self.total("n_trajectories")

    @property
    def n_steps(self) -> int:
        return self.total("n_steps")

    @property
    def n_skipped(self) -> int:
        return self.total("n_skipped", ("ingested", "replaced", "unchanged", "failed"))

    @property
    def n_bytes(self) -> int:
        return self.total("size_bytes", ("ingested", "replaced"))

    @property
    def exit_code(self) -> int:
        read = [f for f in self.files if f.status in ("ingested", "replaced", "unchanged")]
        if not read:
            return EXIT_NOTHING
        if self.errors or self.n_skipped or any(f.status == "failed" for f in self.files):
            return EXIT_PARTIAL
        return EXIT_OK


def ingest_paths(
    lake: Lake,
    paths: list[str | Path],
    *,
    format: str = "auto",
    source: str | None = None,
    labels: str | Path | None = None,
    console: Console | None = None,
    model: str | None = None,
    mapping: str | Path | None = None,
    jobs: int | None = None,
) -> IngestSummary:
    """Ingest raw trajectory files (and folders of them) into `lake`; see the module docstring."""
    console = console or Console(0)
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    fmt, ctx, mapping_sha = _format_and_context(format, mapping, model)
    try:
        label_set = load_labels(labels) if labels else None
    except LabelsError as exc:
        raise IngestError(str(exc)) from None
    settings = Settings(
        format=fmt,
        ctx=ctx,
        labels=label_set,
        digest=digest(
            "settings",
            ADAPTER_VERSION,
            fmt,
            mapping_sha,
            label_set and label_set.sha256,
            model,
            *_plugins(),
        ),  # fmt: skip
        ingested_at=now,
    )
    summary = IngestSummary()
    found = discover(list(paths), lake, source)
    summary.n_ignored_suffix = found.n_ignored
    summary.n_unreadable_folders = found.n_unreadable_folders
    lake.ensure()
    removed = writers.sweep(lake)
    if removed:
        console.info(f"removed {removed} unfinished part file(s) an interrupted writer left")
    state = LakeState.load(lake)
    for given, record, error in found.problems:
        summary.errors.append(Problem(given, record, error))
    state.record_path_problems(paths, found.problems, now)
    if label_set is not None:
        summary.errors += [Problem(label_set.file, b.record, b.error) for b in label_set.errors]
        state.record_label_errors(label_set, now)
    for task in found.tasks:
        task.previous = state.previous_if_intact(task.file_key)

    units = _units(found.tasks, settings)
    todo_bytes = sum(t.size for u in units for i, t in enumerate(u.tasks) if i not in u.known)
    workers = min(jobs or os.cpu_count() or 1, len(units))
    if todo_bytes < POOL_MIN_BYTES:
        workers = 1
    with console.progress("ingest", total=len(found.tasks)) as advance:

        def commit(unit: Unit, results: list[FileResult]) -> bool:
            log_rows = []
            for result in results:
                report = state.apply(result, summary, now)
                summary.files.append(report)
                if report.status != "ignored":
                    log_rows.append(_log_row(result, report, settings, now))
                    console.detail(
                        f"{report.file}: {report.status}, {report.format or '-'} "
                        f"(by {report.detected_by or '-'}), {report.n_trajectories} runs, "
                        f"{report.n_steps} steps, {report.n_skipped} skipped"
                    )
                advance()
            if log_rows:  # the batch's marker, after its parts
                lake.write_part(
                    "ingest_files",
                    pl.DataFrame(log_rows, schema=_log_schema(), orient="row"),
                    part=f"{now:%Y%m%dT%H%M%S%f}-{digest('log', os.getpid(), time.time_ns(), length=8)}",
                )
            return False

        executor.run(
            units, executor.processes(functools.partial(read_unit, settings), workers), commit
        )
    audits.after(lake, "ingest", console)
    summary.seconds = time.perf_counter() - started
    return summary


def _plugins() -> list:
    """The installed formats and their versions, when there are any (a lake read with the
    built-ins alone keeps the digest it had before plug-ins existed)."""
    versions = formats.installed_versions()
    return [versions] if versions else []


def _format_and_context(format: str, mapping: str | Path | None, model: str | None):
    mapping_sha = None
    spec = None
    if format.startswith("mapping:"):
        if mapping:
            raise IngestError("give the mapping file once: --format mapping:FILE or --mapping FILE")
        mapping, format = format.removeprefix("mapping:"), "mapping"
    if mapping and format not in ("auto", "mapping"):
        raise IngestError(
            f"--mapping describes the format: it cannot be combined with --format {format}"
        )
    if format == "mapping" and not mapping:
        raise IngestError("--format mapping needs the mapping file: --format mapping:FILE")
    if mapping:
        from pipeline.ingest.formats import mapping as mapping_format

        try:
            spec = mapping_format.load_spec(mapping)
        except ValueError as exc:
            raise IngestError(str(exc)) from None
        mapping_sha, format = spec.sha256, "mapping"
    elif format != "auto":
        try:
            formats.adapter(format)
        except ValueError as exc:
            raise IngestError(str(exc)) from None
    return format, ReadContext(model=model, mapping=spec), mapping_sha


@dataclass
class Unit:
    """Consecutive files read and committed together: `known` holds the results of those whose
    bytes and settings match their last ingest (by position), which are not read again."""

    tasks: list[FileTask]
    known: dict[int, FileResult] = field(default_factory=dict)


def _units(tasks: list[FileTask], settings: Settings) -> list[Unit]:
    """The files in order, cut so that each unit has up to BATCH_BYTES / BATCH_FILES to read:
    small files share one schema check and one round trip to a worker."""
    units: list[Unit] = []
    size = n = 0
    for task in tasks:
        known = check_unchanged(task, settings)
        reads = known is None
        if not units or reads and (size + task.size > BATCH_BYTES or n >= BATCH_FILES):
            units.append(Unit([]))
            size = n = 0
        unit = units[-1]
        if known is not None:
            unit.known[len(unit.tasks)] = known
        unit.tasks.append(task)
        size, n = size + task.size * reads, n + reads
    return units


def read_unit(settings: Settings, unit: Unit) -> list[FileResult]:
    """A unit's work: its files' results, in order (reading only those not known)."""
    todo = [t for i, t in enumerate(unit.tasks) if i not in unit.known]
    parsed = iter(read_batch(todo, settings))
    return [unit.known[i] if i in unit.known else next(parsed) for i in range(len(unit.tasks))]


def _log_schema() -> dict:
    from pipeline import schemas

    return schemas.table("ingest_files").columns


def _log_row(result: FileResult, report: FileReport, settings: Settings, now: dt.datetime) -> tuple:
    task = result.task
    return (
        task.file_key,
        task.path,
        task.resolved,
        result.sha256 or "",
        task.size,
        task.source,
        report.format or "",
        result.settings_digest or settings.digest,
        report.status,
        report.n_trajectories,
        report.n_steps,
        report.n_skipped,
        report.n_duplicates,
        now,
    )
