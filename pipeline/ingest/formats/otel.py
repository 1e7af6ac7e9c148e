"""OpenTelemetry GenAI traces: one run per trace (``traceId``) of the file.

The file is read into spans (``otel_spans``: OTLP JSON as the collector's file exporter writes
it, or flat span lists) and each span's part in the run is read under the GenAI conventions
(``otel_genai``: model calls, tool runs, agents; messages from the GenAI attributes, the older
message events, OpenLLMetry or OpenInference attributes). Steps follow the spans in time order:
a span's input messages at its start, its output messages and tool result at its end.

Every model call re-sends the conversation so far, so a history's messages are matched against
what the run already holds before they become steps: tool calls and results by call id, other
messages by role and text (whitespace and JSON layout aside). The n-th time a history holds a
message stands for the run's n-th copy of it, so a user who says "yes" twice keeps both, and
histories that order messages differently (a system prompt given apart) repeat nothing. A model's
output is always new. A tool span adds its call only if no model output holds it (a tool span
without a call id runs the oldest open call of its tool), then its result: an error when the
span's status is ``ERROR`` (the status message, else the exception, is the text when there is no
result); a result without content waits for the next model call's history to bring it.

Run fields, from the root span's attributes (then the resource's; each key also read under
``traceloop.association.properties.`` and in an OpenInference ``metadata`` object): outcome from
``outcome``, ``task.outcome``, ``task.success``, ``success``, ``resolved`` or ``passed``; reward
from ``reward``, ``task.reward`` or ``score``; task id from ``task.id``, ``task_id`` or
``session.id``; ground truth (``grader``, ``expected``, ``expected_output``, ``ground_truth``,
``reference``) goes to ``meta.grader``. Model: the first model call's response (else request)
model; agent: ``gen_ai.agent.name``, else the resource's ``service.name``. Token usage, service,
root span, status and the root's other attributes go to ``meta``. Traces without any GenAI span
(plain HTTP or database traces sharing the file) are not runs and are passed over.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.ingest.formats import otel_genai as genai
from pipeline.ingest.formats.otel_messages import Atom, parsed
from pipeline.ingest.formats.otel_spans import (
    LogEvent,
    Span,
    is_export,
    looks_like_span,
    read_spans,
)
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Run, StepBuilder, as_reward, normalize_outcome

NAME = "otel"
OUTCOME_KEYS = ("outcome", "task.outcome", "task.success", "success", "resolved", "passed")
REWARD_KEYS = ("reward", "task.reward", "score")
TASK_KEYS = ("task.id", "task_id", "session.id")
GRADER_KEYS = ("grader", "expected", "expected_output", "ground_truth", "reference")
ASSOCIATION = "traceloop.association.properties."
_USED = {*OUTCOME_KEYS, *REWARD_KEYS, *TASK_KEYS, *GRADER_KEYS, "metadata"}


def sniff(sample: list[Any], raw: RawFile) -> bool:
    if sample:
        return any(looks_like_span(r) for r in sample) or (
            any(is_export(r) for r in sample) and all(is_export(r) for r in sample)
        )
    if raw.is_parquet or not raw.looks_like_json:
        return False
    head = raw.text[:8192]  # a damaged document, or objects printed one after another
    return (
        '"resourceSpans"' in head
        or ('"trace_id"' in head and '"span_id"' in head)
        or ('"traceId"' in head and '"spanId"' in head)
    )


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    traces: dict[str, dict[str, Span]] = {}
    logs: list[LogEvent] = []
    n_spans = n_bad = 0
    for item in read_spans(raw):
        if isinstance(item, BadRecord):
            n_bad += 1
            yield item
        elif isinstance(item, LogEvent):
            logs.append(item)
        else:
            n_spans += 1
            traces.setdefault(item.trace_id, {}).setdefault(item.span_id, item)  # first copy
    orphans: dict[str, LogEvent] = {}
    for log in logs:
        span = traces.get(log.trace_id, {}).get(log.span_id or "")
        if span is None:
            orphans.setdefault(log.trace_id, log)
        else:
            span.logs.append(log.event)
    for trace_id, log in orphans.items():
        yield BadRecord(log.record, f"log records of trace {trace_id} whose span is not in this "
                        "file: they are not read (export the spans into the same file)")  # fmt: skip
    n_runs = 0
    for trace_id, by_id in traces.items():
        spans = sorted(by_id.values(), key=lambda s: s.order)
        if not any(genai.is_genai(s) for s in spans):
            continue
        record = f"trace {trace_id} ({spans[0].record.split(':')[0]})"
        try:
            run, problems = build_run(trace_id, spans, record, ctx)
        except ValueError as exc:
            yield BadRecord(record, str(exc))
            continue
        yield from problems
        if not run.steps:
            why = "its spans' messages could not be read" if problems else (
                "turn on message content capture (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_"
                "CONTENT=true for OpenTelemetry instrumentations)")  # fmt: skip
            yield BadRecord(record, f"trace without messages or tool calls: {why}")
            continue
        n_runs += 1
        yield run
    if (
        n_runs == 0
        and n_spans
        and not any(genai.is_genai(s) for by_id in traces.values() for s in by_id.values())
    ):
        yield BadRecord("document", f"{len(traces)} trace(s), none with GenAI spans (gen_ai.*, "
                        "llm.*, openinference.* or traceloop.* attributes)")  # fmt: skip
    elif n_spans == 0 and not logs and not n_bad:
        yield BadRecord("document", "no spans in this file")


class Transcript:
    """The run's steps so far, and what each step was (to recognise it when a span repeats it)."""

    def __init__(self) -> None:
        self.b = StepBuilder()
        self.n = 0  # atoms emitted
        self.seen: dict[tuple, list[int]] = {}  # key -> positions of the atoms that have it
        self.open: list[tuple[str | None, str, str | None]] = []  # calls: source id, id, tool
        self.message = 0

    def find(self, key: tuple, rank: int) -> int | None:
        """Where the run holds an atom already: the `rank`-th atom with its key (a history that
        holds a message twice repeats the run's first two), None if the run has fewer."""
        places = self.seen.get(key)
        return places[rank] if places and rank < len(places) else None

    def absorb(self, messages: list[list[Atom]], fresh: bool) -> None:
        """Add the messages the run does not hold yet (a model's own output: all of them)."""
        ranks: dict[tuple, int] = {}
        for atoms in messages:
            new = []
            for atom in atoms:
                if fresh:
                    new.append(atom)
                    continue
                key = atom.key()
                rank = ranks[key] = ranks.get(key, -1) + 1
                if self.find(key, rank) is None:
                    new.append(atom)
            self.emit(new)

    def emit(self, atoms: list[Atom]) -> None:
        if not atoms:
            return
        for atom in atoms:
            if atom.kind == "call":
                used = self.b.call(atom.name, atom.args, atom.call_id, self.message,
                                   content=atom.text)  # fmt: skip
                self.open.append((atom.call_id, used, atom.name))
            elif atom.kind == "result":
                self.b.result(self._answer(atom.call_id, atom.name), atom.text, self.message,
                              is_error=atom.is_error, name=atom.name)  # fmt: skip
            else:
                self.b.message(atom.role, atom.text or "", self.message)
            for key in atom.keys():
                self.seen.setdefault(key, []).append(self.n)
            self.n += 1
        self.message += 1

    def _open_call(self, call_id: str | None, name: str | None) -> int | None:
        """The open call a result answers: by id, else the oldest of its tool, else the latest."""
        for i, (source, used, tool) in enumerate(self.open):
            if call_id is not None and call_id in (source, used):
                return i
            if call_id is None and name is not None and tool == name:
                return i
        if call_id is None and name is None and self.open:
            return len(self.open) - 1
        return None

    def _answer(self, call_id: str | None, name: str | None) -> str | None:
        i = self._open_call(call_id, name)
        return call_id if i is None else self.open.pop(i)[1]

    def tool_call(self, call: Atom) -> Atom:
        """Start of a tool span: its call, added unless a model output holds it already (by id,
        or an open call of the same tool when the span has no id); returned with the id the run
        knows it by."""
        i = self._open_call(call.call_id, call.name)
        if i is None:
            self.emit([call])
            i = len(self.open) - 1
        return Atom("call", "assistant", None, self.open[i][1], call.name, call.args)

    def tool_result(self, call: Atom, result: Atom) -> None:
        """End of a tool span: its result, unless its call was answered already."""
        if self._open_call(call.call_id, None) is not None:
            text, name, flag = result.text, result.name, result.is_error
            self.emit([Atom("result", "tool", text, call.call_id, name, is_error=flag)])


def build_run(trace_id: str, spans: list[Span], record: str, ctx) -> tuple[Run, list[BadRecord]]:
    by_id = {s.span_id: s for s in spans}
    depth = {s.span_id: _depth(s, by_id) for s in spans}
    views = {s.span_id: genai.read_span(s) for s in spans}
    problems = [BadRecord(s.record, f"span {s.span_id} ({s.name}): {p}")
                for s in spans for p in views[s.span_id].problems]  # fmt: skip
    timed = all(s.start is not None for s in spans)  # else the file's order stands for time
    timeline = []
    for s in spans:
        start = s.start if timed else s.order * 2
        end = (s.end if s.end is not None else start) if timed else s.order * 2 + 1
        d = depth[s.span_id]
        timeline.append(((start, 1, d, s.order, 0), "in", s))
        # At one instant spans end (inner first) before others start (outer first); a span
        # that takes no time ends right after it starts.
        out = (end, 0, -d, s.order, 0) if end > start else (start, 1, d, s.order, 1)
        timeline.append((out, "out", s))
    timeline.sort(key=lambda t: t[0])
    t = Transcript()
    calls: dict[str, Atom] = {}
    waiting: list[tuple[Atom, Atom]] = []  # results without content, for now
    for _, edge, s in timeline:
        v = views[s.span_id]
        if v.kind == "tool":
            if edge == "in":
                calls[s.span_id] = t.tool_call(v.call)
            elif v.result.text is None and not v.result.is_error:
                # Content capture off for tools: the next model call's history may hold it.
                waiting.append((calls.get(s.span_id, v.call), v.result))
            else:
                t.tool_result(calls.get(s.span_id, v.call), v.result)
        elif edge == "in":
            t.absorb(v.inputs, fresh=False)
            if v.kind == "model":
                for call, result in waiting:
                    t.tool_result(call, result)
                waiting = []
        else:
            t.absorb(v.outputs, fresh=v.kind == "model")
    for call, result in waiting:
        t.tool_result(call, result)
    roots = [s for s in spans if s.parent_id is None or s.parent_id not in by_id]
    root = min(roots or spans, key=lambda s: (s.parent_id is not None, s.start or 0, s.order))
    return _run(trace_id, spans, views, root, t, record, ctx), problems


def _run(trace_id, spans, views, root: Span, t: Transcript, record: str, ctx) -> Run:
    attrs = _run_attributes(root)
    reward = as_reward(_first(attrs, REWARD_KEYS))
    outcome = normalize_outcome(_first(attrs, OUTCOME_KEYS))
    if outcome is None and reward is not None:
        outcome = normalize_outcome(reward)
    task = _first(attrs, TASK_KEYS)
    ordered = sorted(spans, key=lambda s: (s.start or 0, s.order))
    models = [views[s.span_id].model for s in ordered if views[s.span_id].model]
    agents = [s.attrs["gen_ai.agent.name"] for s in ordered if s.attrs.get("gen_ai.agent.name")]
    agents += [root.attrs.get("traceloop.workflow.name"), root.resource.get("service.name")]
    usage = [views[s.span_id].usage for s in spans]
    meta: dict[str, Any] = {"spans": len(spans), "root_span": root.name}
    if root.resource.get("service.name"):
        meta["service"] = root.resource["service.name"]
    if len(set(models)) > 1:
        meta["models"] = sorted(set(models))
    for i, key in enumerate(("input_tokens", "output_tokens")):
        counts = [u[i] for u in usage if u[i] is not None]
        if counts:
            meta.setdefault("usage", {})[key] = sum(counts)
    if root.start is not None and root.end is not None:
        meta["duration_ms"] = round((root.end - root.start) / 1e6, 3)
    if root.status == "ERROR":
        meta["status"] = {"code": "ERROR", "message": root.status_message}
    grader = {k: attrs[k] for k in GRADER_KEYS if k != "grader" and attrs.get(k) is not None}
    own = parsed(attrs.get("grader"))
    if isinstance(own, dict):
        grader = {**own, **grader}
    elif own is not None:
        grader["grader"] = own
    if grader:
        meta["grader"] = grader
    rest = {k: v for k, v in root.attrs.items() if k not in _USED
            and k not in genai.CONTENT_KEYS and not k.startswith(genai.CONTENT_PREFIXES)}  # fmt: skip
    if rest:
        meta["attributes"] = rest
    return Run(
        record=record,
        steps=t.b.steps,
        native_id=trace_id,
        task_id=None if task is None else str(task),
        model=models[0] if models else ctx.model,
        agent=next((str(a) for a in agents if a), None),
        outcome=outcome,
        reward=reward,
        meta=meta,
    )


def _run_attributes(root: Span) -> dict[str, Any]:
    """Where run fields are looked for: the root span, its resource, association properties and
    an OpenInference ``metadata`` object (the root span's own attributes win)."""
    out: dict[str, Any] = {}
    metadata = parsed(root.attrs.get("metadata"))
    for source in (root.resource, metadata if isinstance(metadata, dict) else {}, root.attrs):
        for k, v in source.items():
            out[k.removeprefix(ASSOCIATION)] = v
    return out


def _depth(span: Span, by_id: dict[str, Span]) -> int:
    d, seen, cur = 0, {span.span_id}, span
    while cur.parent_id in by_id and cur.parent_id not in seen:
        seen.add(cur.parent_id)
        cur = by_id[cur.parent_id]
        d += 1
    return d


def _first(attrs: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if attrs.get(key) is not None:
            return attrs[key]
    return None
