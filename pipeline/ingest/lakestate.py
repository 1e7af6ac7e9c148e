"""What the lake already holds for an ingest, and the writes that keep it consistent.

Reads ``ingest_files`` (each file's latest ingest), the part names of ``trajectories``,
``steps`` and ``ingest_errors`` (a part is named by the key of the raw file it came from), and
the trajectory ids with the file that owns them. ``apply`` turns one file's read result into
writes: its parts replaced (or removed when it no longer yields a run), the parts of the same
path under another source removed, runs already owned by another file dropped as duplicates, and
its bad records written as its ``ingest_errors`` part.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.ids import digest
from pipeline.lake import Lake

FILE_TABLES = ("trajectories", "steps", "ingest_errors")


@dataclass(frozen=True)
class Previous:
    """A file's latest row in ingest_files."""

    sha256: str
    settings_digest: str
    format: str
    status: str
    n_trajectories: int
    n_steps: int
    n_skipped: int
    n_duplicates: int


def _part_key(path: str) -> str:
    return path.rsplit("/", 1)[-1].removeprefix("part-").removesuffix(".parquet")


class LakeState:
    def __init__(self, lake: Lake):
        self.lake = lake
        self.previous: dict[str, Previous] = {}
        self.keys_of_path: dict[str, set[str]] = {}
        self.parts: dict[str, dict[str, list[str]]] = {t: {} for t in FILE_TABLES}
        self.owner: dict[str, str] = {}  # trajectory_id -> key of the file it came from
        self.ids_of: dict[str, list[str]] = {}
        self.file_of: dict[str, str] = {}

    @classmethod
    def load(cls, lake: Lake) -> LakeState:
        state = cls(lake)
        log = lake.read("ingest_files").sort("ingested_at").group_by("file_key").last()
        for row in log.iter_rows(named=True):
            key = row["file_key"]
            state.previous[key] = Previous(
                row["file_sha256"], row["settings_digest"], row["format"], row["status"],
                row["n_trajectories"], row["n_steps"], row["n_skipped"], row["n_duplicates"],
            )  # fmt: skip
            state.keys_of_path.setdefault(row["resolved_path"], set()).add(key)
            state.file_of[key] = row["file"]
        for table in FILE_TABLES:
            for path in lake.parts(table):
                state.parts[table].setdefault(_part_key(path), []).append(path)
        files = lake.parts("trajectories")
        if files:
            ids = (
                pl.scan_parquet(
                    [lake.url(f) for f in files],
                    include_file_paths="part",
                    storage_options=lake.storage_options or None,
                )
                .select("trajectory_id", "part")
                .collect()
            )
            for tid, part in ids.iter_rows():
                key = _part_key(part)
                state.owner[tid] = key
                state.ids_of.setdefault(key, []).append(tid)
        return state

    def previous_if_intact(self, key: str) -> Previous | None:
        """The file's last ingest, if its rows are still in the lake (else it must be re-read)."""
        prev = self.previous.get(key)
        if prev is None or prev.status == "failed":
            return None
        if prev.n_trajectories and key not in self.parts["trajectories"]:
            return None
        return prev

    # -- writes ------------------------------------------------------------------------------
    def drop_parts(self, key: str, tables=FILE_TABLES) -> None:
        for table in tables:
            paths = self.parts[table].pop(key, [])
            if paths:
                self.lake.delete_parts(table, paths)
        if "trajectories" in tables:
            for tid in self.ids_of.pop(key, []):
                if self.owner.get(tid) == key:
                    del self.owner[tid]

    def write(self, table: str, df: pl.DataFrame, key: str, partition=None) -> None:
        path = self.lake.write_part(table, df, part=key, partition=partition, validate=False)
        stale = [p for p in self.parts[table].get(key, []) if p != path]
        if stale:
            self.lake.delete_parts(table, stale)
        self.parts[table][key] = [path]

    def errors_frame(
        self, file: str, sha: str | None, fmt: str | None, problems, now
    ) -> pl.DataFrame:
        from pipeline import schemas

        rows = [(file, sha, record, fmt, error, now) for record, error in problems]
        return pl.DataFrame(rows, schema=schemas.table("ingest_errors").columns, orient="row")

    def write_errors(self, key: str, frame: pl.DataFrame) -> None:
        if frame.height:
            self.write("ingest_errors", frame, key)
        else:
            self.drop_parts(key, ("ingest_errors",))

    def apply(self, result, summary, now: dt.datetime):
        """Write one file's result; returns its FileReport and fills the summary's lists."""
        from pipeline.ingest.run import FileReport, Problem

        task = result.task
        report = FileReport(
            task.path, task.source, result.format, result.detected_by, result.status,
            size_bytes=task.size, seconds=result.seconds,
        )  # fmt: skip
        others = self.keys_of_path.get(task.resolved, set()) - {task.file_key}
        if result.status == "ignored":
            summary.ignored.append(Problem(task.path, "-", result.error or ""))
            return report
        if result.status == "unchanged":
            prev = task.previous
            report.n_trajectories, report.n_steps = prev.n_trajectories, prev.n_steps
            report.n_skipped, report.n_duplicates = prev.n_skipped, prev.n_duplicates
            return report
        self.keys_of_path.setdefault(task.resolved, set()).add(task.file_key)
        had_rows = any(k in self.parts["trajectories"] for k in others | {task.file_key})
        for key in others:  # the file moved to another source: its old parts go
            self.drop_parts(key)
        if result.status == "failed":
            summary.errors.append(Problem(task.path, "-", result.error))
            self.drop_parts(task.file_key)
            self.write_errors(
                task.file_key,
                self.errors_frame(
                    task.path, result.sha256, result.format, [("-", result.error)], now
                ),
            )
            return report

        frames = result.frames
        traj, steps = frames.trajectories, frames.steps
        dropped = []
        for tid, record in traj.select("trajectory_id", "record").iter_rows():
            owner = self.owner.get(tid)
            if owner is not None and owner != task.file_key:
                dropped.append(tid)
                summary.duplicates.append(
                    Problem(task.path, record, f"same run as in {self.file_of.get(owner, owner)}")
                )
        if dropped:
            traj = traj.filter(~pl.col("trajectory_id").is_in(dropped))
            steps = steps.filter(~pl.col("trajectory_id").is_in(dropped))
        if traj.height:
            for tid in self.ids_of.pop(task.file_key, []):
                if self.owner.get(tid) == task.file_key:
                    del self.owner[tid]
            part = {"source": task.source}
            self.write("trajectories", traj, task.file_key, part)
            self.write("steps", steps, task.file_key, part)
            ids = traj.get_column("trajectory_id").to_list()
            self.ids_of[task.file_key] = ids
            for tid in ids:
                self.owner[tid] = task.file_key
        else:  # a changed file that no longer yields a run: its old rows go
            self.drop_parts(task.file_key, ("trajectories", "steps"))
        self.file_of[task.file_key] = task.path
        summary.errors += [Problem(task.path, e.record, e.error) for e in frames.errors]
        summary.duplicates += [Problem(task.path, d.record, d.reason) for d in frames.duplicates]
        self.write_errors(
            task.file_key,
            self.errors_frame(
                task.path, result.sha256, result.format,
                [(e.record, e.error) for e in frames.errors], now,
            ),
        )  # fmt: skip
        report.status = "replaced" if had_rows else "ingested"
        report.n_trajectories, report.n_steps = traj.height, steps.height
        report.n_skipped = len(frames.errors)
        report.n_duplicates = len(frames.duplicates) + len(dropped)
        report.n_labelled = frames.n_labelled
        return report

    def record_path_problems(self, paths, problems, now: dt.datetime) -> None:
        """One ingest_errors part per path argument that could not be read (a missing path, a
        folder with no trajectory files, folders under it that could not be listed); removed
        once the path reads again."""
        failed: dict[str, list[tuple[str, str]]] = {}
        for given, record, error in problems:
            failed.setdefault(given, []).append((record, error))
        for given in paths:
            key = "path-" + digest("path", str(Path(given).resolve()))
            self.parts["ingest_errors"].setdefault(key, [])
            frame = self.errors_frame(str(given), None, None, failed.get(str(given), []), now)
            self.write_errors(key, frame)

    def record_label_errors(self, labels, now: dt.datetime) -> None:
        key = "labels-" + digest("labels", str(Path(labels.file).resolve()))
        frame = self.errors_frame(
            labels.file, labels.sha256, "labels", [(e.record, e.error) for e in labels.errors], now
        )
        self.write_errors(key, frame)
