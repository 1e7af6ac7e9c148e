"""Episodes -> OpenTelemetry GenAI traces, laid out as the collector's file exporter writes them.

One trace per run: a root span (``invoke_agent``, or an OpenLLMetry workflow) carrying the task
id, reward, outcome and the grader's view as attributes; one model-call span per assistant
message, sent the whole history so far; one tool span per tool call, with an ``ERROR`` status
and the error as its status message when the tool failed. Runs take turns between the message
conventions the reader knows: the GenAI attributes (``gen_ai.input.messages``, with the instructions,
request and final answer also on the ``invoke_agent`` span), OpenLLMetry's flattened ``gen_ai.prompt.*``
attributes, and the older message events. A closing user message no model call was sent is not
in the trace, as in a real one. Spans are exported in the order they end (children before their
parents), 64 to a line, so runs spread over lines and share them, as a real exporter does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.ingest.record import looks_like_error
from pipeline.ingest.synth.episode import Episode

T0 = 1_715_785_200_000_000_000  # 2024-05-15 15:00 UTC, in nanoseconds
BATCH = 64
VARIANTS = ("semconv", "openllmetry", "events")
SCOPES = {"semconv": "opentelemetry.instrumentation.openai_v2",
          "openllmetry": "opentelemetry.instrumentation.openai", "events": "azure.ai.inference"}  # fmt: skip


def otel_traces(shard: int, episodes: list[Episode], out: Path) -> list[Path]:
    spans: list[tuple[int, int, str, dict]] = []  # (end, seq, variant, span)
    for e in episodes:
        spans += _trace(e, len(spans))
    spans.sort(key=lambda s: (s[0], s[1]))
    lines = []
    for i in range(0, len(spans), BATCH):
        batch = spans[i : i + BATCH]
        lines.append(json.dumps({"resourceSpans": [
            {"resource": {"attributes": _kv({"service.name": "synthetic-agents",
                                             "telemetry.sdk.language": "python"})},
             "scopeSpans": [{"scope": {"name": SCOPES[v]}, "spans": [s for _, _, w, s in batch
                                                                      if w == v]}
                            for v in VARIANTS if any(w == v for _, _, w, _ in batch)]}]},
            ensure_ascii=False))  # fmt: skip
    path = out / f"traces-{shard:04d}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [path]


def variant(e: Episode) -> str:
    """The message convention a run is written in."""
    return VARIANTS[_hash(e.run_id) % len(VARIANTS)]


def trace_id(e: Episode) -> str:
    return f"{_hash(e.run_id):032x}"


def _trace(e: Episode, seq: int) -> list[tuple[int, int, str, dict]]:
    convention, tid = variant(e), trace_id(e)
    root_id = _span_id(e.run_id, "root")
    clock = T0 + (_hash(e.run_id, "start") % 86_400_000) * 1_000_000
    start = clock
    msgs = e.messages
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=-1)
    out = []
    for i, m in enumerate(msgs[: last + 1]):
        if m["role"] != "assistant":
            continue
        clock += 5_000_000
        end = clock + (300 + len(m.get("content") or "") % 700) * 1_000_000
        attrs, events = _model_call(convention, e.model, msgs[:i], m)
        out.append((end, seq + len(out), convention, _span(
            tid, _span_id(e.run_id, i), root_id, _model_name(convention, e.model), clock, end,
            attrs, events=events)))  # fmt: skip
        clock = end
        results = {r["tool_call_id"]: r for r in msgs[i + 1 :] if r["role"] == "tool"}
        for call in m.get("tool_calls") or []:
            result = results.get(call["id"])
            if result is None:
                continue
            clock += 2_000_000
            end = clock + 40_000_000
            out.append((end, seq + len(out), convention, _tool(
                convention, tid, _span_id(e.run_id, call["id"]), root_id, clock, end, call,
                result["content"])))  # fmt: skip
            clock = end
    clock += 5_000_000
    root = {"task.id": e.task_id, "reward": e.reward, "outcome": e.outcome,
            "grader": json.dumps(e.grader, ensure_ascii=False), "trial": e.trial}  # fmt: skip
    if convention == "openllmetry":
        root = {"traceloop.span.kind": "workflow", "traceloop.entity.name": e.family,
                **{f"traceloop.association.properties.{k}": v for k, v in root.items()}}  # fmt: skip
        name = f"{e.family}.workflow"
    else:
        root = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": f"{e.family}-agent",
                **root}  # fmt: skip
        name = f"invoke_agent {e.family}-agent"
        if convention == "semconv":
            first = next(m for m in msgs if m["role"] == "user")
            root["gen_ai.system_instructions"] = _dump(
                [{"type": "text", "content": m["content"]} for m in msgs if m["role"] == "system"]
            )
            root["gen_ai.input.messages"] = _dump([_parts(first)])
            root["gen_ai.output.messages"] = _dump([_parts(msgs[last])] if last >= 0 else [])
    out.append((clock, seq + len(out), convention, _span(tid, root_id, None, name, start,
                                                      clock, root)))  # fmt: skip
    return out


def _model_call(convention: str, model: str, history: list[dict], reply: dict):
    usage = (
        sum(len(m.get("content") or "") for m in history) // 4,
        len(reply["content"] or "") // 4,
    )
    if convention == "semconv":
        system = [m for m in history if m["role"] == "system"]
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                 "gen_ai.request.model": model, "gen_ai.response.model": model,
                 "gen_ai.input.messages": _dump([_parts(m) for m in history if m["role"] != "system"]),
                 "gen_ai.output.messages": _dump([{**_parts(reply), "finish_reason": "stop"}])}  # fmt: skip
        if system:
            attrs["gen_ai.system_instructions"] = _dump(
                [{"type": "text", "content": m["content"]} for m in system]
            )
        return {**attrs, "gen_ai.usage.input_tokens": usage[0],
                "gen_ai.usage.output_tokens": usage[1]}, []  # fmt: skip
    if convention == "openllmetry":
        attrs = {"llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": model,
                 "gen_ai.response.model": model, "gen_ai.usage.prompt_tokens": usage[0],
                 "gen_ai.usage.completion_tokens": usage[1]}  # fmt: skip
        for i, m in enumerate(history):
            attrs.update(_flat(f"gen_ai.prompt.{i}", m))
        attrs.update(_flat("gen_ai.completion.0", reply))
        return attrs, []
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.system": "az.ai.inference",
             "gen_ai.request.model": model, "gen_ai.response.model": model}  # fmt: skip
    events = [(f"gen_ai.{m['role']}.message", {"gen_ai.event.content": _dump(m)}) for m in history]
    choice = {"message": {k: v for k, v in reply.items() if k != "role"}, "index": 0,
              "finish_reason": "tool_calls" if reply.get("tool_calls") else "stop"}  # fmt: skip
    return attrs, [*events, ("gen_ai.choice", {"gen_ai.event.content": _dump(choice)})]


def _tool(convention, trace_id, span_id, parent, start, end, call, content: str) -> dict:
    name, args = call["function"]["name"], call["function"]["arguments"]
    failed = looks_like_error(content)
    status = {"code": 2, "message": content} if failed else {}
    if convention == "openllmetry":
        attrs = {"traceloop.span.kind": "tool", "traceloop.entity.name": name,
                 "traceloop.entity.input": _dump({"args": [], "kwargs": json.loads(args)})}  # fmt: skip
        if not failed:
            attrs["traceloop.entity.output"] = _dump(content)
        return _span(trace_id, span_id, parent, f"{name}.tool", start, end, attrs, status)
    attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
             "gen_ai.tool.call.id": call["id"], "gen_ai.tool.call.arguments": args}  # fmt: skip
    if not failed:
        attrs["gen_ai.tool.call.result"] = content
    return _span(trace_id, span_id, parent, f"execute_tool {name}", start, end, attrs, status)


def _parts(m: dict) -> dict:
    parts: list[dict[str, Any]] = [{"type": "text", "content": m["content"]}] if m.get(
        "content") else []  # fmt: skip
    for call in m.get("tool_calls") or []:
        parts.append({"type": "tool_call", "id": call["id"], "name": call["function"]["name"],
                      "arguments": json.loads(call["function"]["arguments"])})  # fmt: skip
    if m["role"] == "tool":
        parts = [{"type": "tool_call_response", "id": m["tool_call_id"], "response": m["content"]}]
    return {"role": m["role"], "parts": parts}


def _flat(prefix: str, m: dict) -> dict[str, Any]:
    out = {f"{prefix}.role": m["role"]}
    if m.get("content") is not None:
        out[f"{prefix}.content"] = m["content"]
    if m.get("tool_call_id"):
        out[f"{prefix}.tool_call_id"] = m["tool_call_id"]
    for j, call in enumerate(m.get("tool_calls") or []):
        out[f"{prefix}.tool_calls.{j}.id"] = call["id"]
        out[f"{prefix}.tool_calls.{j}.name"] = call["function"]["name"]
        out[f"{prefix}.tool_calls.{j}.arguments"] = call["function"]["arguments"]
    return out


def _span(trace_id, span_id, parent, name, start, end, attrs, status=None, events=()) -> dict:
    span = {"traceId": trace_id, "spanId": span_id, "parentSpanId": parent or "", "name": name,
            "kind": 3 if name.startswith(("chat", "openai.")) else 1,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
            "attributes": _kv(attrs), "status": status or {}}  # fmt: skip
    if events:
        span["events"] = [{"timeUnixNano": str(start), "name": n, "attributes": _kv(a)}
                          for n, a in events]  # fmt: skip
    return span


def _kv(attrs: dict[str, Any]) -> list[dict]:
    return [{"key": k, "value": _value(v)} for k, v in attrs.items()]


def _value(v: Any) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _model_name(convention: str, model: str) -> str:
    return "openai.chat" if convention == "openllmetry" else f"chat {model}"


def _hash(*parts: Any) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=16).digest(), "big")


def _span_id(run_id: str, what: Any) -> str:
    return f"{_hash(run_id, what) % (1 << 64) or 1:016x}"
