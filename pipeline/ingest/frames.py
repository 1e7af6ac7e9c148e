"""Runs of one raw file -> the rows of `trajectories` and `steps` (polars frames in the exact
column types of their tables; ``validate_frames`` checks many files' frames at once).

Ids: ``trajectory_id`` is a digest of the source, the run's native id and its steps (role, kind,
content, tool name, arguments, call id, error flag), so it is stable across library versions and
across re-ingests of the same content. A run whose id repeats one already read from the same file
is counted as a duplicate and dropped. Outcomes come from the source; where it has none, from the
labels; else ``unknown``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from pipeline import schemas
from pipeline.ids import digest
from pipeline.ingest.labels import Labels
from pipeline.ingest.record import CANONICAL, BadRecord, Duplicate, Run


@dataclass
class FileFrames:
    trajectories: pl.DataFrame
    steps: pl.DataFrame
    errors: list[BadRecord] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    n_labelled: int = 0


def steps_digest(steps: list) -> str:
    """blake2b of the canonical JSON of every step's content fields (what makes a run itself)."""
    body = [(s[0], s[1], s[2], s[3], s[4], s[5], s[7]) for s in steps]
    data = CANONICAL.encode(body).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def trajectory_id(source: str, run: Run) -> str:
    return digest("trajectory", source, run.native_id, steps_digest(run.steps))


def meta_json(meta: dict) -> str:
    return CANONICAL.encode(meta)


def build_frames(
    items: Iterable[Run | BadRecord | Duplicate],
    *,
    source: str,
    file: str,
    file_sha256: str,
    format: str,
    ingested_at: dt.datetime,
    labels: Labels | None = None,
) -> FileFrames:
    out = FileFrames(schemas.empty("trajectories"), schemas.empty("steps"))
    traj_rows: list[tuple] = []
    step_rows: list[tuple] = []
    step_tids: list[str] = []
    step_counts: list[int] = []
    first_seen: dict[str, str] = {}
    for item in items:
        if isinstance(item, BadRecord):
            out.errors.append(item)
            continue
        if isinstance(item, Duplicate):
            out.duplicates.append(item)
            continue
        run = item
        if not run.steps:
            out.errors.append(BadRecord(run.record, "run without steps"))
            continue
        tid = trajectory_id(source, run)
        if tid in first_seen:
            out.duplicates.append(Duplicate(run.record, f"same run as {first_seen[tid]}"))
            continue
        first_seen[tid] = run.record
        outcome, reward, origin = run.outcome, run.reward, "source"
        if outcome is None:
            label = labels.lookup(tid, run.native_id, run.task_id) if labels else None
            if label is not None:
                outcome, label_reward = label
                reward = reward if reward is not None else label_reward
                origin = "labels"
                out.n_labelled += 1
            else:
                outcome, origin = "unknown", "none"
        traj_rows.append(
            (tid, run.native_id, run.task_id, run.model, run.agent, outcome, origin, reward,
             len(run.steps), meta_json(run.meta), run.record)
        )  # fmt: skip
        step_rows.extend(run.steps)
        step_tids.append(tid)
        step_counts.append(len(run.steps))
    if not traj_rows:
        return out

    t = list(zip(*traj_rows, strict=True))
    trajectories = pl.DataFrame(
        {
            "trajectory_id": t[0],
            "source": [source] * len(traj_rows),
            "native_id": pl.Series(t[1], dtype=pl.String),
            "task_id": pl.Series(t[2], dtype=pl.String),
            "model": pl.Series(t[3], dtype=pl.String),
            "agent": pl.Series(t[4], dtype=pl.String),
            "outcome": t[5],
            "outcome_origin": t[6],
            "reward": pl.Series(t[7], dtype=pl.Float64),
            "n_steps": t[8],
            "meta": t[9],
            "file": [file] * len(traj_rows),
            "record": t[10],
            "file_sha256": [file_sha256] * len(traj_rows),
            "format": [format] * len(traj_rows),
            "ingested_at": pl.Series(
                [ingested_at] * len(traj_rows), dtype=pl.Datetime("us", "UTC")
            ),
        }
    )
    s = list(zip(*step_rows, strict=True))
    steps = pl.DataFrame(
        {
            "trajectory_id": pl.Series(step_tids, dtype=pl.String)
            .repeat_by(pl.Series(step_counts, dtype=pl.UInt32))
            .explode(),
            "source": pl.repeat(source, len(step_rows), eager=True, dtype=pl.String),
            "step_idx": pl.Series([i for n in step_counts for i in range(n)], dtype=pl.Int64),
            "message_idx": pl.Series(s[8], dtype=pl.Int64),
            "role": pl.Series(s[0], dtype=pl.String),
            "kind": pl.Series(s[1], dtype=pl.String),
            "content": pl.Series(s[2], dtype=pl.String),
            "tool_name": pl.Series(s[3], dtype=pl.String),
            "tool_args": pl.Series(s[4], dtype=pl.String),
            "tool_call_id": pl.Series(s[5], dtype=pl.String),
            "call_step_idx": pl.Series(s[6], dtype=pl.Int64),
            "is_error": pl.Series(s[7], dtype=pl.Boolean),
        }
    ).with_columns(
        content_chars=pl.col("content").str.len_chars().fill_null(0).cast(pl.Int64),
        args_chars=pl.col("tool_args").str.len_chars().fill_null(0).cast(pl.Int64),
    )
    spec = schemas.table("trajectories").columns
    out.trajectories = trajectories.select([pl.col(c).cast(t) for c, t in spec.items()])
    spec = schemas.table("steps").columns
    out.steps = steps.select([pl.col(c).cast(t) for c, t in spec.items()])
    return out


def validate_frames(frames: list[FileFrames]) -> list[str | None]:
    """Check the frames of several files against their schemas in one pass (a pandera run
    costs milliseconds however small the frame); on a failure, find the files at fault.
    Returns one error message (or None) per file."""
    if not frames:
        return []
    try:
        for table in ("trajectories", "steps"):
            schemas.validate(table, pl.concat([getattr(f, table) for f in frames]))
        return [None] * len(frames)
    except schemas.TableError:
        pass
    problems: list[str | None] = []
    for f in frames:
        try:
            schemas.validate("trajectories", f.trajectories)
            schemas.validate("steps", f.steps)
            problems.append(None)
        except schemas.TableError as exc:
            problems.append(f"rows do not fit the lake's schema: {exc}")
    return problems
