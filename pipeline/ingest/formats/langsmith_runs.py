"""A LangSmith export file -> its runs, grouped by trace into run trees.

Reads what ``langsmith`` documents: runs one per JSON line, a JSON list of runs, an API answer
``{"runs": [...]}``, run trees with nested ``child_runs``, or the rows of a bulk export's
Parquet file (``langsmith_bulk``); feedback records among them are handed back apart. Each run
is checked (an ``id``, a ``run_type``, objects where the format has objects, readable times); a
run that fails is a ``BadRecord`` and the rest are read. A run's
trace is its ``trace_id``, else its parent's, else the root id at the head of its
``dotted_order``; a run exported twice counts once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pipeline.ingest.formats import langsmith_bulk
from pipeline.ingest.formats.otel_messages import as_str
from pipeline.ingest.formats.otel_spans import nanos
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, json_type


@dataclass(slots=True, eq=False)
class LsRun:
    """One LangSmith run as read, with where it is in the file and its children."""

    id: str
    run_type: str
    name: str
    data: dict
    record: str
    order: int
    parent_id: str | None
    trace_id: str | None
    start: int | None
    children: list[LsRun] = field(default_factory=list)

    def part(self, key: str) -> dict:
        value = self.data.get(key)
        return value if isinstance(value, dict) else {}


def is_run(rec: Any) -> bool:
    return (isinstance(rec, dict) and isinstance(rec.get("run_type"), str) and "id" in rec
            and any(k in rec for k in ("inputs", "outputs", "trace_id", "dotted_order")))  # fmt: skip


def is_feedback(rec: Any) -> bool:
    return isinstance(rec, dict) and "key" in rec and ("run_id" in rec or "trace_id" in rec)


def listed_runs(rec: Any) -> bool:
    """An API answer: ``{"runs": [...], "cursors": ...}``."""
    runs = rec.get("runs") if isinstance(rec, dict) else None
    return isinstance(runs, list) and bool(runs) and is_run(runs[0])


def records(raw: RawFile) -> Iterator[tuple[str, Any]]:
    if raw.is_parquet:
        yield from langsmith_bulk.rows(raw)
    elif raw.is_jsonl:
        for n, value in raw.jsonl():
            yield f"line {n}", value
    else:
        for i, value in raw.json_records():
            yield ("document" if i is None else f"[{i}]"), value


def flatten(value: Any, where: str, parent: LsRun | None, out: list[LsRun]) -> Iterator[BadRecord]:
    """The run and its nested ``child_runs``, appended to `out`; bad ones as errors."""
    if not isinstance(value, dict):
        yield BadRecord(where, "expected a LangSmith run (id, run_type, inputs, outputs) or a "
                        f"feedback record, got {json_type(value)}")  # fmt: skip
        return
    run_id = as_str(value.get("id"))
    problem = None
    if run_id is None:
        problem = "a run without an 'id'"
    elif not isinstance(value.get("run_type"), str):
        problem = f"run {run_id}: 'run_type' is missing or not a string"
    else:
        for key in ("inputs", "outputs", "extra", "feedback_stats"):
            if value.get(key) is not None and not isinstance(value[key], dict):
                problem = f"run {run_id}: '{key}' is {json_type(value[key])}, expected an object"
    children = value.get("child_runs")
    if problem is None and children is not None and not isinstance(children, list):
        problem = f"run {run_id}: 'child_runs' is {json_type(children)}, expected a list"
    try:
        start = nanos(value.get("start_time"), "start_time") if problem is None else None
    except ValueError as exc:
        problem = f"run {run_id}: {exc}"
    if problem is not None:
        yield BadRecord(where, problem)
        return
    dotted = value.get("dotted_order")
    trace_id = as_str(value.get("trace_id")) or (parent.trace_id if parent else None)
    if trace_id is None and isinstance(dotted, str) and "Z" in dotted:
        trace_id = dotted.split(".", 1)[0].split("Z", 1)[1] or None  # the root's id
    run = LsRun(run_id, value["run_type"], str(value.get("name") or value["run_type"]), value,
                where, len(out), as_str(value.get("parent_run_id")) or (parent.id if parent else None),
                trace_id, start)  # fmt: skip
    out.append(run)
    for i, child in enumerate(children or []):
        yield from flatten(child, f"{where} child_runs[{i}]", run, out)


def traces(runs: list[LsRun]) -> dict[str, tuple[list[LsRun], list[LsRun]]]:
    """trace id -> (its top runs in order, the root first; all its runs)."""
    by_id: dict[str, LsRun] = {}
    for run in runs:
        by_id.setdefault(run.id, run)  # a run exported twice (pages that overlap): first copy
    groups: dict[str, list[LsRun]] = {}
    for run in by_id.values():
        top, seen = run, {run.id}
        while top.trace_id is None and top.parent_id in by_id and top.parent_id not in seen:
            seen.add(top.parent_id)
            top = by_id[top.parent_id]
        groups.setdefault(top.trace_id or top.id, []).append(run)
    out = {}
    for trace_id, members in groups.items():
        inside = {r.id for r in members}
        tops = []
        for run in members:
            if run.parent_id in inside and run.parent_id != run.id:
                by_id[run.parent_id].children.append(run)
            else:
                tops.append(run)
        tops = in_order(tops)
        tops.sort(key=lambda r: r.id != trace_id)  # the root first, where it is in the file
        out[trace_id] = (tops, members)
    return out


def in_order(runs: list[LsRun]) -> list[LsRun]:
    """Siblings in the order they ran: ``dotted_order`` (start time and id, as LangSmith sorts
    a trace) when every one has it, else start time, else file order."""
    if all(isinstance(r.data.get("dotted_order"), str) for r in runs):
        return sorted(runs, key=lambda r: (r.data["dotted_order"], r.order))
    return sorted(runs, key=lambda r: (r.start is None, r.start or 0, r.order))
