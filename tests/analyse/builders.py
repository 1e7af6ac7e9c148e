"""Tiny lakes from inline runs: each run a list of steps written the short way.

run("t1", "shop", "failure", [
    user("book me a flight"),
    call("book", {"amount": 5}, "Error: payment amount does not add up", error=True),
    say("done"),
], grader={"actions": [{"name": "book", "kwargs": {"amount": 7}}]})
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pipeline import schemas
from pipeline.lake import Lake

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass
class Step:
    role: str
    text: str | None = None
    tool: str | None = None
    args: Any = None
    result: str | None = None
    error: bool = False
    said: str | None = None  # text sent with a call


def user(text: str) -> Step:
    return Step("user", text)


def say(text: str) -> Step:
    return Step("assistant", text)


def system(text: str) -> Step:
    return Step("system", text)


def call(
    tool: str, args: Any, result: str = "ok", *, error: bool = False, said: str | None = None
) -> Step:
    return Step("call", tool=tool, args=args, result=result, error=error, said=said)


@dataclass
class Run:
    trajectory_id: str
    source: str
    outcome: str
    steps: list[Step]
    task_id: str | None = None
    grader: dict | None = None
    reward: float | None = None
    extra_meta: dict = field(default_factory=dict)


def run(tid: str, source: str, outcome: str, steps: list[Step], **kw) -> Run:
    return Run(tid, source, outcome, steps, **kw)


def frames(runs: list[Run]) -> tuple[pl.DataFrame, pl.DataFrame]:
    trajs, rows = [], []
    for r in runs:
        idx = 0
        for mi, s in enumerate(r.steps):
            base = {"trajectory_id": r.trajectory_id, "source": r.source, "message_idx": mi}
            if s.role != "call":
                rows.append(
                    {**base, "step_idx": idx, "role": s.role, "kind": "message", "content": s.text}
                )
                idx += 1
                continue
            args = s.args if isinstance(s.args, str) else json.dumps(s.args)
            cid = f"c{idx}"
            rows.append(
                {
                    **base,
                    "step_idx": idx,
                    "role": "assistant",
                    "kind": "tool_call",
                    "content": s.said,
                    "tool_name": s.tool,
                    "tool_args": args,
                    "tool_call_id": cid,
                }
            )
            rows.append(
                {
                    **base,
                    "step_idx": idx + 1,
                    "role": "tool",
                    "kind": "tool_result",
                    "content": s.result,
                    "tool_name": s.tool,
                    "tool_call_id": cid,
                    "call_step_idx": idx,
                    "is_error": s.error,
                }
            )
            idx += 2
        meta = dict(r.extra_meta)
        if r.grader is not None:
            meta["grader"] = r.grader
        trajs.append(
            {
                "trajectory_id": r.trajectory_id,
                "source": r.source,
                "native_id": r.trajectory_id,
                "task_id": r.task_id,
                "model": "test-model",
                "agent": "test",
                "outcome": r.outcome,
                "outcome_origin": "source",
                "reward": r.reward,
                "n_steps": idx,
                "meta": json.dumps(meta),
                "file": "inline",
                "record": r.trajectory_id,
                "file_sha256": "0" * 64,
                "format": "inline",
                "ingested_at": NOW,
            }
        )
    steps = pl.DataFrame(rows, infer_schema_length=None)
    columns = schemas.table("steps").columns
    steps = steps.with_columns(
        [pl.lit(None, dtype).alias(c) for c, dtype in columns.items() if c not in steps.columns]
    ).with_columns([pl.col(c).cast(dtype) for c, dtype in columns.items()])
    steps = steps.with_columns(
        pl.col("is_error").fill_null(False),
        pl.col("content").str.len_chars().fill_null(0).alias("content_chars"),
        pl.col("tool_args").str.len_chars().fill_null(0).alias("args_chars"),
    ).select(list(schemas.table("steps").columns))
    traj = pl.DataFrame(trajs, infer_schema_length=None).select(
        list(schemas.table("trajectories").columns)
    )
    return schemas.validate("trajectories", traj), schemas.validate("steps", steps)


def write(lake: Lake, runs: list[Run], part: str = "p0") -> None:
    """Write runs as one part per source (as ingest writes one part per raw file)."""
    traj, steps = frames(runs)
    for (source,), t in traj.group_by("source"):
        lake.write_part("trajectories", t, part=part, partition={"source": source})
        lake.write_part(
            "steps",
            steps.filter(pl.col("source") == source),
            part=part,
            partition={"source": source},
        )
