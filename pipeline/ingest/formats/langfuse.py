"""Langfuse traces: one run per trace, from the trace with its observations and scores.

Shapes read (JSON document, JSON list or JSON lines, freely mixed):

- a trace with its observations and scores as the public API returns it (``GET
  /api/public/traces/{traceId}``, ``TraceWithFullDetails``: ``id``, ``timestamp``, ``name``,
  ``sessionId``, ``userId``, ``tags``, ``metadata``, ``observations: [ObservationsView]``,
  ``scores: [Score]``), one per line or in a list, or a page of them (``{"data": [...]}``);
- the UI's "Download JSON" of a trace: ``{"trace": {...}, "observations": [...]}`` (older
  releases; scores on the trace) or ``{"observations": [...], "scores": [...]}``;
- observations and scores on their own (``GET /api/public/observations`` pages, the
  observations table export), grouped into traces by ``traceId``.

An observation (``id``, ``traceId``, ``type``, ``startTime``, ``endTime``, ``parentObservationId``,
``input``, ``output``, ``level``, ``statusMessage``, ``model``) is a ``GENERATION`` (a model
call), a ``TOOL`` run, or a ``SPAN`` / ``AGENT`` / ``CHAIN`` / ``EVENT`` / ... that wraps or marks
the others. Input and output may be JSON given as text. Steps follow the observations in time
order, as the OTel reader does (its ``Transcript``): a generation's input messages at its start,
its output at its end. A generation's input is OpenAI chat messages (a list, or ``{"messages":
[...], "tools": [...]}`` as the OpenAI integration logs it; LangChain's ``tool_calls`` with
``args`` too), or text for a user message; its output is the assistant message (``tool_calls``
included), text, or a chat completion's ``choices`` (the first is kept). Every generation re-sends
the conversation so far: a history's messages that the run already holds are not steps again
(tool calls and results by call id, other messages by role and text). A ``TOOL`` observation, or a
``SPAN`` named after a tool the model just called (SDKs before the TOOL type traced tools as
spans), runs the open call with its id (LangChain's ``ToolMessage`` output names it) or else the
oldest open call of its tool; its output is the result, an error when its level is ``ERROR`` (the
status message is the text when there is no output) or a ``ToolMessage`` has status ``error``;
other results are judged by their text.

Run fields: native id = trace id; task id from the trace metadata (``task_id``, ``task``,
``task.id``, ``instance_id``), else a tag ``task:ID`` (or ``task_id:ID``, ``task=ID``), else the
``sessionId``; model from the first generation; agent from the first ``AGENT`` observation, else
the trace name. Outcome from the trace's scores: the score whose name holds one of the words
success, resolved, solved, passed, pass, correct, outcome, accuracy, reward (in that order of
preference; trace-level scores before observation-level ones, then the latest): a boolean score
(``True`` / 1 = success), a categorical one by its label (pass / fail, correct / incorrect, ...),
a numeric one as a reward (>= 1.0 = success, so 0/1 reads as failure/success and an accuracy of
0.8 is a failure); else unknown (``--labels`` can give it). All scores, user, session, tags,
release, environment, the rest of the metadata, token usage and cost go to ``meta``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipeline.ingest.formats.otel import Transcript
from pipeline.ingest.formats.otel_messages import Atom, as_json, message_atoms, parsed
from pipeline.ingest.formats.otel_spans import SpanError, nanos
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import (
    BadRecord,
    Run,
    as_reward,
    json_type,
    normalize_outcome,
    outcome_from_reward,
    text_of,
)

NAME = "langfuse"
OBSERVATION_TYPES = {"SPAN", "GENERATION", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER",
                     "EVALUATOR", "EMBEDDING", "GUARDRAIL"}  # fmt: skip
OUTCOME_WORDS = ("success", "resolved", "solved", "passed", "pass", "correct", "outcome",
                 "accuracy", "reward")  # fmt: skip
TASK_KEYS = ("task_id", "task", "task.id", "instance_id")
_TASK_TAG = re.compile(r"^task(?:_id)?[:=](.+)$")
_WORD = re.compile(r"[^a-z0-9]+")
_CARRIED = ("name", "sessionId", "userId", "tags", "environment", "release", "version")


def sniff(sample: list[Any], raw: RawFile) -> bool:
    if sample:
        hits = sum(_shape(r) is not None for r in sample)
        return hits > 0 and 2 * hits >= len(sample)
    if raw.is_parquet or not raw.looks_like_json:
        return False
    head = raw.text[:8192]  # a damaged document: judged by the keys only Langfuse writes
    return '"observations"' in head and ('"parentObservationId"' in head or '"htmlPath"' in head)


def _shape(r: Any) -> str | None:
    if not isinstance(r, dict):
        return None
    if isinstance(r.get("observations"), list):
        if isinstance(r.get("trace"), dict) or (
            "id" not in r and isinstance(r.get("scores"), list)
        ):
            return "bundle"
        return "trace" if "id" in r and ("timestamp" in r or "htmlPath" in r) else None
    if isinstance(r.get("data"), list) and "id" not in r:
        return "page" if r["data"] and _shape(r["data"][0]) is not None else None
    if _is_observation(r):
        return "observation"
    return "score" if _is_score(r) else None


def _is_observation(r: dict) -> bool:
    return ("id" in r and "traceId" in r and "startTime" in r and "spanId" not in r
            and str(r.get("type", "")).upper() in OBSERVATION_TYPES)  # fmt: skip


def _is_score(r: dict) -> bool:
    return ("traceId" in r and "name" in r and ("value" in r or "stringValue" in r)
            and ("dataType" in r or "source" in r))  # fmt: skip


class Traces:
    """The file's traces by id, in the order they first appear, with what each holds."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}

    def entry(self, trace_id: str, record: str) -> dict[str, Any]:
        return self.by_id.setdefault(
            trace_id, {"record": record, "header": None, "obs": {}, "scores": [], "bad": []}
        )

    def add(self, value: Any, record: str) -> Iterator[BadRecord]:
        shape = _shape(value)
        if shape == "page":
            for j, item in enumerate(value["data"]):
                yield from self.add(item, f"data[{j}]" if record == "document" else
                                    f"{record} data[{j}]")  # fmt: skip
        elif shape == "trace" or (shape == "bundle" and isinstance(value.get("trace"), dict)):
            header = value.get("trace") or value
            if header.get("id") is None:
                yield BadRecord(record, "trace without an 'id'")
                return
            entry = self.entry(str(header["id"]), record)
            entry["header"] = header
            yield from self._nested(entry, value, record, str(header["id"]))
        elif shape == "bundle":
            yield from self._nested(None, value, record, None)
        elif shape == "observation":
            self._observation(self.entry(str(value["traceId"]), record), value, record)
        elif shape == "score":
            self.entry(str(value["traceId"]), record)["scores"].append(value)
        else:
            yield BadRecord(record, "expected a Langfuse trace (with 'observations'), observation "
                            f"(traceId, type, startTime) or score, got {_what(value)}")  # fmt: skip

    def _nested(self, entry, value: dict, record: str, trace_id: str | None):
        header = value.get("trace") if isinstance(value.get("trace"), dict) else value
        listed = value["observations"]
        if entry is not None and listed and all(isinstance(o, str) for o in listed):
            entry["ids_only"] = True  # a trace listing names its observations by id only
            listed = []
        for k, obs in enumerate(listed):
            where = f"{record} observations[{k}]"
            tid = obs.get("traceId") or trace_id if isinstance(obs, dict) else None
            if not isinstance(obs, dict) or obs.get("id") is None or tid is None:
                yield BadRecord(where, f"expected an observation with 'id' and 'traceId', got "
                                f"{_what(obs)}")  # fmt: skip
            else:
                self._observation(entry or self.entry(str(tid), record), obs, where)
        for score in (*_list(header.get("scores")), *_list(value.get("scores") if header is not
                                                             value else None)):  # fmt: skip
            if isinstance(score, dict) and (trace_id or score.get("traceId")):
                self.entry(str(trace_id or score["traceId"]), record)["scores"].append(score)

    @staticmethod
    def _observation(entry: dict, obs: dict, where: str) -> None:
        entry["obs"].setdefault(str(obs["id"]), (where, obs))  # the same observation twice: once


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    if raw.is_jsonl:
        records = ((f"line {n}", value) for n, value in raw.jsonl())
    else:
        records = (("document" if i is None else f"[{i}]", v) for i, v in raw.json_records())
    traces = Traces()
    for record, value in records:
        if isinstance(value, BadRecord):
            yield value
        else:
            yield from traces.add(value, record)
    for trace_id, entry in traces.by_id.items():
        record = f"trace {trace_id} ({entry['record']})"
        if not entry["obs"]:
            why = ("its observations are listed by id only (as GET /api/public/traces lists "
                   "them): export each trace with GET /api/public/traces/{traceId}"
                   if entry.get("ids_only") else "export the trace with its observations")  # fmt: skip
            yield BadRecord(record, f"trace without observations: {why}")
            continue
        try:
            run, problems = build_run(trace_id, entry, record, ctx)
        except ValueError as exc:
            yield BadRecord(record, str(exc))
            continue
        yield from problems
        if not run.steps:
            yield BadRecord(record, "trace without messages or tool calls: no generation "
                            "holds input or output messages")  # fmt: skip
            continue
        yield run


def build_run(trace_id: str, entry: dict, record: str, ctx) -> tuple[Run, list[BadRecord]]:
    problems: list[BadRecord] = []
    timed = []
    for order, (where, obs) in enumerate(entry["obs"].values()):
        try:
            start = nanos(obs.get("startTime"), "startTime")
            end = nanos(obs.get("endTime"), "endTime")
        except SpanError as exc:
            problems.append(BadRecord(where, f"observation {obs['id']}: {exc}; it is not read"))
            continue
        timed.append((obs, start, end, order))
    parents = {str(o["id"]): o.get("parentObservationId") for o, *_ in timed}
    timeline = []
    for obs, start, end, order in timed:
        start = start if start is not None else order  # no time: the file's order stands for it
        end = end if end is not None and end >= start else start
        d = _depth(str(obs["id"]), parents)
        timeline.append(((start, 1, d, order, 0), "in", obs))
        # At one instant observations end (inner first) before others start (outer first).
        out = (end, 0, -d, order, 0) if end > start else (start, 1, d, order, 1)
        timeline.append((out, "out", obs))
    timeline.sort(key=lambda t: t[0])
    t = Transcript()
    calls: dict[str, Atom] = {}
    for _, edge, obs in timeline:
        kind, oid = str(obs.get("type", "")).upper(), str(obs["id"])
        where = f"observation {oid} ({obs.get('name')})"
        msgs: list[str] = []
        if kind == "GENERATION":
            side = "input" if edge == "in" else "output"
            t.absorb(messages(obs.get(side), side, where, msgs), fresh=edge == "out")
        elif edge == "in" and (kind == "TOOL" or _open_tool(t, obs.get("name"))):
            calls[oid] = t.tool_call(tool_call(obs))
        elif edge == "out" and oid in calls:
            t.tool_result(calls[oid], tool_result(obs))
        problems += [BadRecord(record, p) for p in msgs]
    return _run(trace_id, entry, [o for o, *_ in timed], t, record, ctx), problems


def messages(value: Any, side: str, where: str, problems: list[str]) -> list[list[Atom]]:
    """A generation's input or output as messages, each a list of atoms."""
    value = parsed(value)
    role = "user" if side == "input" else "assistant"
    if value is None or value == "":
        return []
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]  # the OpenAI integration's input when tools are given
    if isinstance(value, dict) and isinstance(value.get("choices"), list) and value["choices"]:
        value = value["choices"][0]
    if isinstance(value, list) and side == "output":
        # Several choices: the first is the one the run went on with; content blocks: one message.
        is_msg = all(isinstance(m, dict) and ("role" in m or "message" in m) for m in value)
        value = value[0] if is_msg and value else {"role": "assistant", "content": value}
    if isinstance(value, str):
        return [[Atom("text", role, value)]]
    if isinstance(value, dict) and not ({"role", "type", "content", "tool_calls", "message"}
                                        & set(value)):  # fmt: skip
        return [[Atom("text", role, as_json(value))]]  # structured input of a custom generation
    out = []
    for m in value if isinstance(value, list) else [value]:
        m = {"role": role, "content": m} if isinstance(m, str) else m
        out.append(message_atoms(_chat_message(m), f"{where} {side}", problems, role))
    return out


def _chat_message(m: Any) -> Any:
    """LangChain's spellings in the chat-completions shape: role from ``type`` and tool calls
    as ``{"name", "args", "id"}``."""
    if not isinstance(m, dict):
        return m
    if "role" not in m and m.get("type") in ("human", "ai", "system", "tool"):
        m = {**m, "role": m["type"]}
    calls = m.get("tool_calls")
    if isinstance(calls, list) and any(isinstance(c, dict) and "args" in c for c in calls):
        m = {**m, "tool_calls": [
            {"id": c.get("id"), "function": {"name": c.get("name"), "arguments": c.get("args")}}
            if isinstance(c, dict) and "args" in c else c for c in calls]}  # fmt: skip
    return m


def tool_call(obs: dict) -> Atom:
    out, meta = parsed(obs.get("output")), obs.get("metadata")
    call_id = (out.get("tool_call_id") if isinstance(out, dict) else None) or (
        meta.get("tool_call_id") if isinstance(meta, dict) else None)  # fmt: skip
    name = obs.get("name")
    return Atom("call", "assistant", None, _str(call_id), _str(name), parsed(obs.get("input")))


def tool_result(obs: dict) -> Atom:
    out = parsed(obs.get("output"))
    if isinstance(out, dict) and "content" in out:  # a LangChain ToolMessage
        text = text_of(out["content"])
    else:
        text = out if out is None or isinstance(out, str) else as_json(out)
    failed = str(obs.get("level", "")).upper() == "ERROR" or (
        isinstance(out, dict) and out.get("status") == "error")  # fmt: skip
    if text is None and failed:
        text = _str(obs.get("statusMessage")) or "error"
    return Atom(
        "result", "tool", text, None, _str(obs.get("name")), is_error=True if failed else None
    )


def _open_tool(t: Transcript, name: Any) -> bool:
    return name is not None and any(tool == name for _, _, tool in t.open)


def _run(trace_id: str, entry: dict, observations: list[dict], t: Transcript, record: str,
         ctx) -> Run:  # fmt: skip
    header = entry["header"] or {}
    ordered = sorted(observations, key=lambda o: str(o.get("startTime") or ""))
    first = ordered[0] if ordered else {}
    fields = {k: header.get(k) for k in _CARRIED}
    # Downloads without the trace itself carry its fields on every observation.
    fields["name"] = fields["name"] or first.get("traceName")
    for k in _CARRIED[1:]:
        fields[k] = fields[k] if fields[k] is not None else first.get(k)
    metadata = parsed(header.get("metadata"))
    metadata = metadata if isinstance(metadata, dict) else {}
    generations = [o for o in ordered if str(o.get("type", "")).upper() == "GENERATION"]
    models = [str(o["model"]) for o in generations if o.get("model")]
    agents = [o.get("name") for o in ordered if str(o.get("type", "")).upper() == "AGENT"]
    outcome, reward, scores, chosen = score_outcome(entry["scores"])
    meta: dict[str, Any] = {"observations": len(observations)}
    meta |= {k: v for k, v in fields.items() if v not in (None, [], "")}
    rest = {k: v for k, v in metadata.items() if k not in TASK_KEYS}
    if rest:
        meta["metadata"] = rest
    if len(set(models)) > 1:
        meta["models"] = sorted(set(models))
    usage = _usage(generations)
    if usage:
        meta["usage"] = usage
    for key in ("htmlPath", "latency", "totalCost"):
        if header.get(key) is not None:
            meta[key] = header[key]
    if scores:
        meta["scores"] = scores
    if chosen:
        meta["outcome_score"] = chosen
    errors = [o.get("name") for o in ordered if str(o.get("level", "")).upper() == "ERROR"]
    if errors:
        meta["errors"] = errors
    task = next((metadata[k] for k in TASK_KEYS if metadata.get(k) is not None), None)
    tags = fields["tags"] if isinstance(fields["tags"], list) else []
    task = task or next((m.group(1) for g in tags if (m := _TASK_TAG.match(str(g)))), None)
    task = task or fields["sessionId"]
    return Run(
        record=record,
        steps=t.b.steps,
        native_id=trace_id,
        task_id=None if task is None else str(task),
        model=models[0] if models else ctx.model,
        agent=_str(next((a for a in agents if a), None) or fields["name"]),
        outcome=outcome,
        reward=reward,
        meta=meta,
    )


def score_outcome(scores: list[dict]) -> tuple[str | None, float | None, dict, str | None]:
    """(outcome, reward, every score's value by name, the name the outcome was read from)."""
    values: dict[str, Any] = {}
    ranked = []
    for i, s in enumerate(sorted(scores, key=lambda s: str(s.get("timestamp") or ""))):
        name = str(s.get("name"))
        value = s.get("stringValue") if s.get("value") is None else s.get("value")
        values[name] = value  # the latest of scores with one name
        words = set(_WORD.split(name.lower()))
        rank = next((r for r, w in enumerate(OUTCOME_WORDS) if w in words), None)
        if rank is not None:
            ranked.append(((rank, s.get("observationId") is not None, -i), s))
    for _, s in sorted(ranked, key=lambda x: x[0]):
        outcome, reward = _score_value(s)
        if outcome is not None:
            return outcome, reward, values, str(s.get("name"))
    return None, None, values, None


def _score_value(s: dict) -> tuple[str | None, float | None]:
    kind, value, label = str(s.get("dataType") or "").upper(), s.get("value"), s.get("stringValue")
    try:
        if kind == "CATEGORICAL" or (value is None and label is not None and kind != "BOOLEAN"):
            return normalize_outcome(label), None
        if kind == "BOOLEAN":
            return normalize_outcome(value if value is not None else label), as_reward(value)
        reward = as_reward(value)
        return outcome_from_reward(reward), reward
    except ValueError:
        return None, None  # a label or value that says nothing of success


def _usage(generations: list[dict]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for o in generations:
        u = o.get("usageDetails") or o.get("usage") or {}
        for key, names in (("input_tokens", ("input", "promptTokens")),
                           ("output_tokens", ("output", "completionTokens"))):  # fmt: skip
            n = next((u[k] for k in names if isinstance(u, dict) and u.get(k) is not None), None)
            if isinstance(n, int | float) and not isinstance(n, bool):
                totals[key] = totals.get(key, 0) + int(n)
    return totals


def _depth(oid: str, parents: dict[str, Any]) -> int:
    d, seen, cur = 0, {oid}, parents.get(oid)
    while cur is not None and str(cur) in parents and str(cur) not in seen:
        seen.add(str(cur))
        cur = parents[str(cur)]
        d += 1
    return d


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _what(value: Any) -> str:
    return (
        f"an object with keys {sorted(value)[:6]}" if isinstance(value, dict) else json_type(value)
    )


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
