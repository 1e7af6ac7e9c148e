"""Arize Phoenix span exports: one run per trace (``context.trace_id``) of the file.

Reads the spans dataframe of Phoenix's Python client (``px.Client().get_spans_dataframe()``,
``client.spans.get_spans_dataframe()``) written as Parquet (``to_parquet``) or JSON
(``to_json``: records, JSON lines, and the ``columns`` / ``index`` / ``table`` layouts): one row
per span with ``name``, ``span_kind``, ``parent_id``, ``start_time``, ``end_time``,
``status_code``, ``status_message``, ``events``, ``context.span_id``, ``context.trace_id`` and
the OpenInference attributes as ``attributes.*`` columns. Phoenix keeps a semantic convention's
value whole in its column (``attributes.llm.input_messages`` holds a list of
``{"message.role", "message.content", "message.tool_calls": [{"tool_call.function.name", ...}]}``)
and splits other dotted keys into objects (``attributes.task`` = ``{"id": ...}``), so each row
is flattened back into the dotted attributes an OTLP span carries and read by the ``otel``
reader (``otel_spans.span_object``, ``otel.build_run``): messages, tool spans (``tool.name``,
``input.value`` arguments, ``output.value`` result, status ``ERROR`` or an ``exception`` event
flags the result), the history each LLM call re-sends matched so every message is one step,
model (``llm.model_name``), task id (``task.id`` / ``task_id`` / ``session.id``, also inside
``attributes.metadata``), token usage. The agent is the root span's name when it is an AGENT span.

Feedback: span annotations as ``client.spans.get_span_annotations_dataframe().reset_index()``
gives them (``span_id``, ``annotation_name``, ``annotator_kind``, ``result.label``,
``result.score``, ``result.explanation``; a ``result`` object or a ``trace_id`` are read too),
written into the same file: appended JSON lines or rows of a concatenated frame. All go to
``meta.annotations``. Outcome rule: the first annotation whose name has a word starting with
success, resolved, correct, pass, reward, outcome or accuracy (``correctness``, ``task_success``),
taken on the trace, then the root span, then the other spans: its label when it is an outcome
word (correct / incorrect, pass / fail, true / false, 1 / 0, ...), else its score as a reward
(1.0 or more = success, below = failure). Such an annotation wins over outcome attributes (which
the ``otel`` reader reads from the root span: ``outcome``, ``success``, ``resolved``, ``reward``
...); with neither the outcome is unknown (``--labels`` can give it by trace id).

A Parquet file is Phoenix's when it has both ``context.*`` id columns (our native steps tables
have ``trajectory_id`` / ``role`` / ``content`` instead). Bad rows (no span id, unreadable JSON),
annotations of spans that are not in the file and traces without LLM messages or tool calls are
reported as bad records; the rest of the file is read.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.formats import otel
from pipeline.ingest.formats.otel_spans import Span, SpanError, norm_id, span_object
from pipeline.ingest.rawfile import FileError, RawFile
from pipeline.ingest.record import (
    BadRecord,
    Run,
    as_reward,
    json_type,
    normalize_outcome,
    outcome_from_reward,
)

NAME = "phoenix"
ID_COLUMNS = frozenset({"context.trace_id", "context.span_id"})
ATTRIBUTES = "attributes."
# Attributes Phoenix loads from JSON text into objects: kept whole, as the otel reader expects.
WHOLE = ("metadata", "tool.parameters", "llm.prompt_template.variables", "document.metadata")
OUTCOME_WORDS = ("success", "resolved", "correct", "pass", "reward", "outcome", "accuracy")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(slots=True, frozen=True)
class Note:
    """One annotation: what it says and which span (None: the whole trace) it is about."""

    name: str
    label: Any
    score: Any
    explanation: Any
    annotator: Any
    span_id: str | None


def sniff(sample: list[Any], raw: RawFile) -> bool:
    if raw.is_parquet:
        return ID_COLUMNS <= set(raw.parquet_columns)
    return any(_is_export(value) for value in sample)


def _is_export(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if ID_COLUMNS <= value.keys():  # a row, or to_json()'s default layout (columns of values)
        return True
    data = value.get("data")  # to_json(orient="table")
    if isinstance(data, list) and data:
        return isinstance(data[0], dict) and ID_COLUMNS <= data[0].keys()
    first = next(iter(value.values()), None)  # to_json(orient="index")
    return isinstance(first, dict) and ID_COLUMNS <= first.keys()


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    traces: dict[str, dict[str, Span]] = {}
    annotations: list[tuple[str, dict]] = []
    n_rows = n_spans = 0
    for record, row in _rows(raw):
        n_rows += 1
        if isinstance(row, BadRecord):
            yield row
        elif isinstance(row, dict) and row.get("annotation_name") is not None:
            annotations.append((record, row))
        else:
            try:
                span = span_object(_span_object(row), record)
            except SpanError as exc:
                yield BadRecord(record, str(exc))
                continue
            span.order, n_spans = n_spans, n_spans + 1
            traces.setdefault(span.trace_id, {}).setdefault(span.span_id, span)  # first copy
    if n_rows == 0:
        yield BadRecord("document", "no spans in this file")
    notes: dict[str, list[Note]] = {}
    trace_of = {sid: tid for tid, by_id in traces.items() for sid in by_id}
    for record, row in annotations:
        note, trace_id = _note(row)
        target = trace_of.get(note.span_id) if note.span_id else trace_id
        if target not in traces:
            what = f"span {note.span_id}" if note.span_id else f"trace {trace_id}"
            yield BadRecord(record, f"annotation {note.name!r} of {what}, which is not in this "
                            "file: export its spans into the same file")  # fmt: skip
            continue
        notes.setdefault(target, []).append(note)
    for trace_id, by_id in traces.items():
        spans = sorted(by_id.values(), key=lambda s: s.order)
        record = f"trace {trace_id} ({spans[0].record})"
        try:
            run, problems = otel.build_run(trace_id, spans, record, ctx)
            yield from problems
            if not run.steps:
                yield BadRecord(record, f"trace of {len(spans)} span(s) without LLM messages or "
                                "tool calls: not an agent run")  # fmt: skip
                continue
            _judge(run, _in_order(notes.get(trace_id, []), by_id))
        except ValueError as exc:
            yield BadRecord(record, str(exc))
            continue
        root = min((s for s in spans if s.parent_id not in by_id), key=lambda s: s.order)
        if run.agent is None and root.attrs.get("openinference.span.kind") == "AGENT":
            run.agent = root.name or None
        yield run


def _rows(raw: RawFile) -> Iterator[tuple[str, Any]]:
    """(where, row or BadRecord) for every row of the export, whatever its layout."""
    if raw.is_parquet:
        try:
            table = pq.read_table(pa.BufferReader(raw.data))
        except Exception as exc:
            raise FileError(f"not a readable Parquet file: {exc}") from None
        for i, row in enumerate(table.to_pylist()):
            yield f"row {i}", row
        return
    values = ((f"line {n}", v) for n, v in raw.jsonl()) if raw.is_jsonl else (
        ("document" if i is None else f"[{i}]", v) for i, v in raw.json_records())  # fmt: skip
    for where, value in values:
        if not isinstance(value, dict):
            yield where, value
        elif isinstance(value.get("data"), list) and "schema" in value:  # orient="table"
            yield from ((f"row {i}", row) for i, row in enumerate(value["data"]))
        elif isinstance(value.get("context.span_id"), dict):  # orient="columns" (the default)
            for key in value["context.span_id"]:
                yield f"row {key}", {c: v.get(key) if isinstance(v, dict) else None
                                     for c, v in value.items()}  # fmt: skip
        elif not ID_COLUMNS <= value.keys() and _is_export(value):  # orient="index"
            yield from ((f"row {key}", row) for key, row in value.items())
        else:
            yield where, value


def _span_object(row: Any) -> dict:
    """A dataframe row as the flat span object the otel reader reads."""
    if not isinstance(row, dict):
        raise SpanError(f"expected a span row, got {json_type(row)}")
    attrs: dict[str, Any] = {}
    if isinstance(row.get("attributes"), dict):  # attributes not spread over columns
        for key, value in row["attributes"].items():
            _flatten(key, value, attrs)
    for column, value in row.items():
        if column.startswith(ATTRIBUTES):
            _flatten(column.removeprefix(ATTRIBUTES), value, attrs)
    if isinstance(row.get("span_kind"), str):
        attrs.setdefault("openinference.span.kind", row["span_kind"])
    events = row.get("events")
    return {
        "context": {"trace_id": row.get("context.trace_id"), "span_id": row.get("context.span_id")},
        "parent_id": _present(row.get("parent_id")),
        "name": _present(row.get("name")),
        "start_time": _time(row.get("start_time")),
        "end_time": _time(row.get("end_time")),
        "status": {
            "code": _present(row.get("status_code")),
            "message": _present(row.get("status_message")),
        },
        "attributes": attrs,
        "events": [_event(e) for e in events] if isinstance(events, list) else [],
    }


def _flatten(key: str, value: Any, out: dict[str, Any]) -> None:
    """Phoenix's nesting undone: objects and lists of objects -> dotted keys with indices;
    empty fields (a Parquet struct holds every key any row has) dropped."""
    value = _present(value)
    if value is None:
        return
    if isinstance(value, dict) and not key.endswith(WHOLE):
        for k, v in value.items():
            _flatten(f"{key}.{k}", v, out)
    elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            if isinstance(v, dict):
                _flatten(f"{key}.{i}", v, out)
    else:
        out[key] = _without_nulls(value)


def _event(e: Any) -> Any:
    if not isinstance(e, dict):
        return e  # the otel reader names what is wrong
    attrs = e.get("attributes")
    return {"name": e.get("name"), "timestamp": _time(e.get("timestamp")),
            "attributes": _without_nulls(attrs) if isinstance(attrs, dict) else attrs}  # fmt: skip


def _note(row: dict) -> tuple[Note, str | None]:
    result = row.get("result") if isinstance(row.get("result"), dict) else {}

    def field(name: str) -> Any:
        return _present(row.get(f"result.{name}", result.get(name)))

    note = Note(str(row["annotation_name"]), field("label"), field("score"),
                field("explanation"), _present(row.get("annotator_kind")),
                norm_id(_present(row.get("span_id"))))  # fmt: skip
    return note, norm_id(_present(row.get("trace_id")))


def _in_order(notes: list[Note], by_id: dict[str, Span]) -> list[Note]:
    """The trace's own annotations first, then the root span's, then the other spans' in turn."""

    def rank(n: Note) -> tuple[int, int]:
        span = by_id.get(n.span_id or "")
        if span is None:
            return (0, 0)
        return (1 if span.parent_id not in by_id else 2, span.order)

    return sorted(notes, key=rank)


def _judge(run: Run, notes: list[Note]) -> None:
    """Outcome and reward from the first annotation about how the run went (see the module
    docstring); every annotation goes to meta."""
    if not notes:
        return
    run.meta["annotations"] = [
        {k: v for k, v in (("name", n.name), ("label", n.label), ("score", n.score),
                           ("explanation", n.explanation), ("annotator_kind", n.annotator),
                           ("span_id", n.span_id)) if v is not None}
        for n in notes
    ]  # fmt: skip
    for n in notes:
        if not any(w.startswith(OUTCOME_WORDS) for w in _WORD.findall(n.name.lower())):
            continue
        reward = as_reward(n.score)
        try:
            outcome = normalize_outcome(n.label)
        except ValueError:  # a label of its own ("helpful"): the score decides
            outcome = None
        outcome = outcome or outcome_from_reward(reward)
        if outcome is not None:
            run.outcome = outcome
            run.reward = reward if reward is not None else run.reward
            run.meta["outcome_annotation"] = n.name
            return


def _time(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return _present(value)


def _present(value: Any) -> Any:
    """None for the NaN pandas writes for a missing value."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if _present(v) is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
