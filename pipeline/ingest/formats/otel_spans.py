"""OpenTelemetry trace files -> ``Span`` records: the reading half of the ``otel`` adapter.

Reads what exporters write:

- OTLP JSON: ``{"resourceSpans": [{"resource", "scopeSpans": [{"scope", "spans": [...]}]}]}``,
  one object per line as the collector's file exporter writes it, or one document (``batches``,
  as trace back-ends return it, and the older ``instrumentationLibrarySpans`` are read too);
- flat span lists: a JSON list, JSON lines, or the concatenated pretty-printed objects of the
  Python SDK's console exporter, of span objects with ``traceId``, ``spanId``, ``parentSpanId``
  (or ``context.trace_id``, ``context.span_id``, ``parent_id``).

Attribute values may be OTLP-typed (``[{"key": ..., "value": {"stringValue": ...}}]``) or plain
objects. Ids may be hex, ``0x`` hex or base64; times nanoseconds, ISO text or ``[s, ns]``.
Log records (``resourceLogs``) that carry a trace and span id become events of their span, so
GenAI events exported as logs into the same file are read with their span; metrics are skipped.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pipeline.ingest.rawfile import FileError, RawFile
from pipeline.ingest.record import BadRecord, json_type

TRACE_KEYS = ("resourceSpans", "resource_spans", "batches")
SCOPE_KEYS = ("scopeSpans", "scope_spans", "instrumentationLibrarySpans")
LOG_KEYS = ("resourceLogs", "resource_logs")
METRIC_KEYS = ("resourceMetrics", "resource_metrics")
_HEX = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_STATUS = {"2": "ERROR", "ERROR": "ERROR", "STATUS_CODE_ERROR": "ERROR", "1": "OK", "OK": "OK",
           "STATUS_CODE_OK": "OK"}  # fmt: skip


class SpanError(ValueError):
    """A span (or log record) that cannot be read; the message says what is wrong."""


@dataclass(slots=True)
class Event:
    name: str
    time: int | None
    attrs: dict[str, Any]
    body: Any = None  # a log record's body; span events have none


@dataclass(slots=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start: int | None  # Unix nanoseconds
    end: int | None
    attrs: dict[str, Any]
    events: list[Event]
    status: str  # OK / ERROR / UNSET
    status_message: str | None
    resource: dict[str, Any]
    scope: str | None
    record: str  # where in the file
    order: int = 0  # position among the file's spans
    logs: list[Event] = field(default_factory=list)  # log events that name this span


@dataclass(slots=True)
class LogEvent:
    """A log record that names a trace: an event of one of its spans."""

    trace_id: str
    span_id: str | None
    event: Event
    record: str


def looks_like_span(rec: Any) -> bool:
    if not isinstance(rec, dict):
        return False
    ctx = rec.get("context")
    return (
        ("traceId" in rec and "spanId" in rec)
        or ("trace_id" in rec and "span_id" in rec)
        or (isinstance(ctx, dict) and "trace_id" in ctx and "span_id" in ctx)
    )


def is_export(rec: Any) -> bool:
    return isinstance(rec, dict) and any(k in rec for k in (*TRACE_KEYS, *LOG_KEYS, *METRIC_KEYS))


def read_spans(raw: RawFile) -> Iterator[Span | LogEvent | BadRecord]:
    """Every span and trace-linked log record of the file, in file order; bad ones as errors."""
    order = 0
    for where, value in _records(raw):
        if isinstance(value, BadRecord):
            yield value
            continue
        for item in _items(value, where):
            if isinstance(item, Span):
                item.order = order
                order += 1
            yield item


def _records(raw: RawFile) -> Iterator[tuple[str, Any]]:
    if raw.is_jsonl:
        for n, value in raw.jsonl():
            yield f"line {n}", value
        return
    try:
        for i, value in raw.json_records():
            yield ("document" if i is None else f"[{i}]"), value
        return
    except FileError:
        if not raw.text.lstrip().startswith("{"):
            raise
    yield from _concatenated(raw)  # objects one after another, as console exporters print them


def _concatenated(raw: RawFile) -> Iterator[tuple[str, Any]]:
    text = raw.text
    pos = _WS.match(text, 0).end()
    while pos < len(text):
        start, where = pos, f"line {raw.line_of(pos)}"
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except ValueError as exc:
            resume = text.find("\n{", start + 1)
            what = "truncated" if resume < 0 and isinstance(exc, json.JSONDecodeError) and (
                exc.pos >= len(text.rstrip())) else "invalid"  # fmt: skip
            rest = "; read on from the next object" if resume >= 0 else ""
            yield where, BadRecord(where, f"{what} JSON: {_short(exc)}{rest}")
            if resume < 0:
                return
            pos = resume + 1
            continue
        bad = raw.bad_utf8_in(start, pos)
        yield where, (BadRecord(where, bad) if bad else value)
        pos = _WS.match(text, pos).end()


def _items(value: Any, where: str) -> Iterator[Span | LogEvent | BadRecord]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _items(item, f"{where} [{i}]")
        return
    if not isinstance(value, dict):
        yield BadRecord(where, f"expected an OTLP export or a span object, got {json_type(value)}")
        return
    if any(k in value for k in TRACE_KEYS):
        yield from _export(value, where, TRACE_KEYS, SCOPE_KEYS, "spans", _span)
    elif any(k in value for k in LOG_KEYS):
        yield from _export(value, where, LOG_KEYS, ("scopeLogs", "scope_logs"), "logRecords", _log)
    elif any(k in value for k in METRIC_KEYS):
        return  # metrics share the collector's file: nothing to read in them
    elif looks_like_span(value):
        try:
            yield _span(value, where, None, None)
        except SpanError as exc:
            yield BadRecord(where, str(exc))
    else:
        keys = ", ".join(list(value)[:6]) or "none"
        yield BadRecord(
            where,
            'neither an OTLP export ({"resourceSpans": [...]}) nor a span with traceId and '
            f"spanId (keys: {keys})",
        )


def _export(value: dict, where: str, top: tuple, scopes: tuple, leaf: str, read) -> Iterator:
    key = next(k for k in top if k in value)
    resources = value[key]
    if not isinstance(resources, list):
        yield BadRecord(where, f"{key} is not a list")
        return
    for r, res in enumerate(resources):
        path = f"{where}: {key}[{r}]"
        if not isinstance(res, dict):
            yield BadRecord(path, "expected an object with resource and scope lists")
            continue
        resource = res.get("resource") if isinstance(res.get("resource"), dict) else {}
        try:
            resource_attrs = attributes(resource.get("attributes"))
        except SpanError as exc:
            yield BadRecord(path, f"resource: {exc}")
            resource_attrs = {}
        skey = next((k for k in scopes if k in res), scopes[0])
        scope_list = res.get(skey) or []
        for s, block in enumerate(scope_list if isinstance(scope_list, list) else [None]):
            if not isinstance(block, dict) or not isinstance(block.get(leaf, []), list):
                yield BadRecord(f"{path}.{skey}[{s}]", f"expected an object with a {leaf} list")
                continue
            scope = block.get("scope") or block.get("instrumentationLibrary") or {}
            scope_name = scope.get("name") if isinstance(scope, dict) else None
            for k, item in enumerate(block.get(leaf) or []):
                record = f"{path}.{skey}[{s}].{leaf}[{k}]"
                try:
                    out = read(item, record, resource_attrs, scope_name)
                except SpanError as exc:
                    yield BadRecord(record, str(exc))
                    continue
                if out is not None:
                    yield out


def span_object(d: Any, record: str) -> Span:
    """One flat span object (``traceId`` / ``context.trace_id``, plain or OTLP-typed attributes)
    as a ``Span``; a SpanError says what is wrong with it."""
    return _span(d, record, None, None)


def _span(d: Any, record: str, resource: dict | None, scope: str | None) -> Span:
    if not isinstance(d, dict):
        raise SpanError(f"expected a span object, got {json_type(d)}")
    ctx = d.get("context") if isinstance(d.get("context"), dict) else {}
    trace_id = norm_id(_first(d, "traceId", "trace_id") or ctx.get("trace_id"))
    span_id = norm_id(_first(d, "spanId", "span_id") or ctx.get("span_id"))
    if trace_id is None:
        raise SpanError("span without a traceId")
    if span_id is None:
        raise SpanError(f"span of trace {trace_id} without a spanId")
    parent = _first(d, "parentSpanId", "parent_span_id", "parent_id", "parentId")
    if parent is None and isinstance(d.get("parentSpanContext"), dict):
        parent = d["parentSpanContext"].get("spanId")
    own = d.get("resource")
    if isinstance(own, dict) and "attributes" in own:
        resource = attributes(own["attributes"])
    scope_obj = _first(d, "instrumentationScope", "instrumentation_scope", "instrumentationLibrary")
    if isinstance(scope_obj, dict):
        scope = scope_obj.get("name", scope)
    status, message = _status(d.get("status"))
    events = d.get("events") or []
    if not isinstance(events, list):
        raise SpanError("events is not a list")
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=norm_id(parent),
        name=str(d.get("name") or ""),
        start=nanos(
            _first(d, "startTimeUnixNano", "start_time_unix_nano", "start_time", "startTime"),
            "start time",
        ),  # fmt: skip
        end=nanos(
            _first(d, "endTimeUnixNano", "end_time_unix_nano", "end_time", "endTime"), "end time"
        ),  # fmt: skip
        attrs=attributes(d.get("attributes")),
        events=[_event(e) for e in events],
        status=status,
        status_message=message,
        resource=resource or {},
        scope=scope,
        record=record,
    )


def _event(e: Any) -> Event:
    if not isinstance(e, dict):
        raise SpanError(f"event is not an object: {e!r:.60}")
    time = _first(e, "timeUnixNano", "time_unix_nano", "timestamp", "time")
    return Event(
        str(e.get("name") or ""), nanos(time, "event time"), attributes(e.get("attributes"))
    )


def _log(d: Any, record: str, resource: dict, scope: str | None) -> LogEvent | None:
    if not isinstance(d, dict):
        raise SpanError(f"expected a log record object, got {json_type(d)}")
    trace_id = norm_id(_first(d, "traceId", "trace_id"))
    if trace_id is None:
        return None  # a log outside any trace is not part of a run
    attrs = attributes(d.get("attributes"))
    name = d.get("eventName") or attrs.get("event.name") or ""
    time = nanos(_first(d, "timeUnixNano", "observedTimeUnixNano"), "log time")
    body = any_value(d.get("body"))
    return LogEvent(trace_id, norm_id(_first(d, "spanId", "span_id")),
                    Event(str(name), time, attrs, body), record)  # fmt: skip


def attributes(value: Any) -> dict[str, Any]:
    """OTLP ``[{"key", "value": AnyValue}]`` or a plain object -> a plain dict."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): any_value(v) for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for kv in value:
            if not isinstance(kv, dict) or "key" not in kv:
                raise SpanError(f"attribute {kv!r:.60} is not a {{key, value}} object")
            out[str(kv["key"])] = any_value(kv.get("value"))
        return out
    raise SpanError(f"attributes are neither a list of {{key, value}} nor an object: {value!r:.60}")


def any_value(v: Any) -> Any:
    """An OTLP ``AnyValue`` as plain JSON (plain values pass through)."""
    if not isinstance(v, dict) or len(v) != 1:
        return v
    (kind, inner), = v.items()  # fmt: skip
    if kind == "stringValue":
        return inner
    if kind == "boolValue":
        return inner if isinstance(inner, bool) else str(inner).lower() == "true"
    if kind == "intValue":
        return int(inner)
    if kind == "doubleValue":
        return float(inner)
    if kind == "bytesValue":
        return inner
    if kind == "arrayValue":
        return [any_value(x) for x in (inner or {}).get("values", [])]
    if kind == "kvlistValue":
        return {kv.get("key"): any_value(kv.get("value")) for kv in (inner or {}).get("values", [])}
    return v


def norm_id(value: Any) -> str | None:
    """Trace and span ids as lowercase hex; all-zero and empty ids are no id."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    low = text.lower().removeprefix("0x")
    if not _HEX.fullmatch(low) and len(text) in (12, 24):  # base64, as protobuf JSON writes bytes
        try:
            low = base64.b64decode(text, validate=True).hex()
        except ValueError:
            pass
    if set(low) <= {"0"}:
        return None
    return low


def nanos(value: Any, what: str) -> int | None:
    """Unix nanoseconds from nanoseconds (number or text), ISO text or ``[seconds, nanos]``."""
    if value is None or value == "":
        return None
    if isinstance(value, list) and len(value) == 2:
        return int(value[0]) * 1_000_000_000 + int(value[1])
    if isinstance(value, bool):
        raise SpanError(f"{what} {value!r} is not a time")
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        n = int(value)
        # Smaller numbers are coarser units: seconds, milliseconds, microseconds.
        for limit, scale in ((1e11, 10**9), (1e14, 10**6), (1e17, 10**3)):
            if n < limit:
                return n * scale
        return n
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
            return (t - _EPOCH) // dt.timedelta(microseconds=1) * 1000
    raise SpanError(f"{what} {value!r:.40} is not a time")


def _status(value: Any) -> tuple[str, str | None]:
    if isinstance(value, dict):
        code = _first(value, "code", "status_code", "statusCode")
        message = _first(value, "message", "description")
    else:
        code, message = value, None
    key = str(code).upper().removeprefix("STATUSCODE.") if code is not None else ""
    return _STATUS.get(key, "UNSET"), (str(message) if message else None)


def _first(d: dict, *keys: str) -> Any:
    for key in keys:
        if d.get(key) is not None:
            return d[key]
    return None


def _short(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno} column {exc.colno})"
    return str(exc)[:200]
