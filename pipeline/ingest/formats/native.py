"""Native Parquet: runs already in (or close to) our steps schema.

The unit is a *steps file*: a Parquet file with at least ``trajectory_id``, ``role`` and
``content``; optional step columns ``step_idx`` (else file order), ``kind`` (else derived:
role tool -> tool_result, an assistant row with a tool name -> tool_call, else message),
``tool_name``, ``tool_args`` (JSON text or a struct), ``tool_call_id``, ``is_error``,
``message_idx``. Run-level fields (``native_id``, ``task_id``, ``model``, ``agent``,
``outcome``, ``reward``, ``meta``) are read from the steps file when it has such columns
(constant per run), else from a *trajectories file* beside it: a Parquet file in the same
folder with ``trajectory_id`` and no ``role`` column (if there are several, the one named like
the steps file with "steps" replaced by "trajectories"). A trajectories file is never a run
source on its own: given alone it is an error, found beside its steps file it is read with it.

The input's ``trajectory_id`` becomes the run's native id (unless a ``native_id`` column says
otherwise), and our own content-hash id is computed as for every format, so the parts of a lake
ingested again into another lake keep their ids.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from pipeline.ingest.rawfile import FileError, RawFile
from pipeline.ingest.record import (
    BadRecord,
    Run,
    StepBuilder,
    as_reward,
    normalize_outcome,
    outcome_from_reward,
)

NAME = "parquet"
STEP_REQUIRED = {"trajectory_id", "role", "content"}
RUN_FIELDS = ("native_id", "task_id", "model", "agent", "outcome", "reward", "meta")


class Companion(Exception):
    """This file is the trajectories table of a steps file beside it: it is read with that."""


def sniff(sample, raw: RawFile) -> bool:
    return raw.is_parquet  # any Parquet file: read() says what is missing or broken


def _columns(path: Path) -> list[str]:
    try:
        return pq.read_schema(path).names
    except Exception:  # not a readable Parquet file: the caller reports it
        return []


def is_steps(names) -> bool:
    return STEP_REQUIRED <= set(names)


def companion_of(path: Path) -> Path | None:
    """The trajectories file beside a steps file, if there is one."""
    candidates = [
        p
        for p in sorted(path.parent.glob("*.parquet"))
        if p != path and not p.name.startswith(".")
        and "trajectory_id" in (names := _columns(p)) and "role" not in names
    ]  # fmt: skip
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    twin = path.with_name(path.name.replace("steps", "trajectories"))
    if twin in candidates:
        return twin
    raise FileError(
        f"several trajectories files beside it ({', '.join(p.name for p in candidates)}); "
        "name the one that belongs to it like the steps file, 'steps' -> 'trajectories'"
    )


def companion_sha(path: Path) -> str | None:
    """sha256 of the trajectories file read with this steps file, if it has one."""
    if not is_steps(_columns(path)):
        return None
    other = companion_of(path)
    return hashlib.sha256(other.read_bytes()).hexdigest() if other else None


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    try:
        df = pl.read_parquet(io.BytesIO(raw.data))
    except Exception as exc:
        raise FileError(f"not a readable Parquet file: {exc}") from None
    if not is_steps(df.columns):
        if "trajectory_id" in df.columns and "role" not in df.columns:
            steps = [
                p for p in sorted(raw.path.parent.glob("*.parquet"))
                if p != raw.path and is_steps(_columns(p))
            ]  # fmt: skip
            if steps:
                raise Companion(f"trajectories table of {', '.join(p.name for p in steps)}")
            raise FileError(
                "a trajectories table without its steps: put the steps Parquet file "
                "(trajectory_id, role, content, ...) in the same folder"
            )
        missing = sorted(STEP_REQUIRED - set(df.columns))
        raise FileError(f"Parquet file without the step columns {missing}")
    runs = _run_fields(df, raw.path)
    order = ["trajectory_id", "step_idx"] if "step_idx" in df.columns else ["trajectory_id"]
    df = df.with_row_index("_row")
    first = df.group_by("trajectory_id").agg(pl.col("_row").min().alias("_first"))
    df = df.join(first, on="trajectory_id").sort(["_first", *order[1:], "_row"])
    cols = [c for c in ("role", "kind", "content", "tool_name", "tool_args", "tool_call_id",
                        "is_error", "message_idx", "step_idx") if c in df.columns]  # fmt: skip
    grouped = df.group_by("trajectory_id", maintain_order=True).agg(
        pl.col("_row").min(), *[pl.col(c) for c in cols]
    )
    for row in grouped.iter_rows(named=True):
        tid = row["trajectory_id"]
        record = f"trajectory_id {tid!r} (row {row['_row']})"
        try:
            steps = _steps(row, cols)
            yield _run(tid, record, steps, runs.get(tid, {}), ctx)
        except ValueError as exc:
            yield BadRecord(record, str(exc))


def _run_fields(df: pl.DataFrame, path: Path) -> dict[str, dict[str, Any]]:
    """trajectory_id -> run-level fields, from the steps file's own columns or the companion."""
    present = [c for c in RUN_FIELDS if c in df.columns]
    source = df.select("trajectory_id", *present).unique("trajectory_id", keep="first")
    other = companion_of(path)
    if other is not None:
        table = pl.read_parquet(other)
        cols = [c for c in RUN_FIELDS if c in table.columns]
        source = table.select("trajectory_id", *cols).unique("trajectory_id", keep="first")
    return {r["trajectory_id"]: r for r in source.iter_rows(named=True)}


def _steps(row: dict, cols: list[str]) -> list:
    b = StepBuilder()
    n = len(row["role"])
    for i in range(n):
        role = row["role"][i]
        kind = row["kind"][i] if "kind" in cols else None
        name = row["tool_name"][i] if "tool_name" in cols else None
        args = row["tool_args"][i] if "tool_args" in cols else None
        call_id = row["tool_call_id"][i] if "tool_call_id" in cols else None
        content = row["content"][i]
        msg = row["message_idx"][i] if "message_idx" in cols else None
        msg = i if msg is None else int(msg)
        if kind is None:
            kind = (
                "tool_result"
                if role == "tool"
                else "tool_call"
                if role == "assistant" and name
                else "message"
            )
        if role not in ("system", "user", "assistant", "tool"):
            raise ValueError(f"step {i}: unknown role {role!r}")
        if kind == "tool_call":
            b.call(name, args, call_id, msg, content=content)
        elif kind == "tool_result":
            flag = row["is_error"][i] if "is_error" in cols else None
            b.result(call_id, content, msg, is_error=flag, name=name)
        elif kind == "message":
            b.message(role, content, msg)
        else:
            raise ValueError(f"step {i}: unknown kind {kind!r}")
    return b.steps


def _run(tid: str, record: str, steps: list, fields: dict, ctx) -> Run:
    meta = fields.get("meta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            raise ValueError("meta is not JSON") from None
    reward = as_reward(fields.get("reward"))
    outcome = normalize_outcome(fields.get("outcome")) or outcome_from_reward(reward)
    return Run(
        record=record,
        steps=steps,
        native_id=str(fields.get("native_id") or tid),
        task_id=_str(fields.get("task_id")),
        model=_str(fields.get("model")) or ctx.model,
        agent=_str(fields.get("agent")),
        outcome=outcome,
        reward=reward,
        meta=meta if isinstance(meta, dict) else {},
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
