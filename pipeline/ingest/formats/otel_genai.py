"""What one span says under the GenAI tracing conventions: its part in the run and its messages.

A span is a model call (``gen_ai.operation.name`` chat / text_completion / generate_content,
OpenInference ``LLM``, OpenLLMetry ``llm.request.type``), a tool run (``execute_tool``,
OpenInference ``TOOL``, OpenLLMetry ``traceloop.span.kind`` tool), an agent (``invoke_agent``,
``AGENT`` / ``CHAIN``, workflow) or other. Its messages are read, first found first, from:

1. the GenAI conventions: ``gen_ai.system_instructions``, ``gen_ai.input.messages``,
   ``gen_ai.output.messages`` (JSON or structured; ``parts`` of type text, tool_call,
   tool_call_response);
2. OpenLLMetry: ``gen_ai.prompt.{i}.role / content / tool_call_id / tool_calls.{j}.*`` and
   ``gen_ai.completion.{i}.*``;
3. OpenInference: ``llm.input_messages.{i}.message.*`` and ``llm.output_messages.{i}.message.*``;
4. the older event conventions: span events (or log records) ``gen_ai.system.message``,
   ``gen_ai.user.message``, ``gen_ai.assistant.message``, ``gen_ai.tool.message`` and
   ``gen_ai.choice`` with their body (the event body, ``gen_ai.event.content`` JSON, or the
   event's attributes), ``gen_ai.content.prompt`` / ``gen_ai.content.completion``, and an
   ``events`` attribute holding such bodies as JSON.

Of several output choices, the first is the one the run went on with. Messages become atoms
(``otel_messages``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.ingest.formats.otel_messages import (
    Atom,
    as_json,
    as_str,
    message_atoms,
    parsed,
    unflatten,
)
from pipeline.ingest.formats.otel_spans import Event, Span

MODEL_OPS = {"chat", "text_completion", "generate_content", "completion", "responses"}
AGENT_OPS = {"invoke_agent", "create_agent", "invoke_workflow"}
EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
               "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}  # fmt: skip
CONTENT_KEYS = ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.tool.definitions", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
                "input.value", "output.value", "traceloop.entity.input", "traceloop.entity.output",
                "events", "tool_arguments", "tool_response")  # fmt: skip
CONTENT_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.",
                    "llm.output_messages.", "llm.tools.")  # fmt: skip
GENAI_PREFIXES = ("gen_ai.", "llm.", "openinference.", "traceloop.")
_OPENLLMETRY = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(.+)$")
_OPENINFERENCE = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")
_TRUNCATED = "cut short by an attribute length limit? raise OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"


@dataclass
class View:
    kind: str  # model / tool / agent / other
    inputs: list[list[Atom]] = field(default_factory=list)  # messages, each a list of atoms
    outputs: list[list[Atom]] = field(default_factory=list)
    call: Atom | None = None  # tool spans: the call they ran and its result
    result: Atom | None = None
    model: str | None = None
    usage: tuple[int | None, int | None] = (None, None)
    problems: list[str] = field(default_factory=list)


def is_genai(span: Span) -> bool:
    return any(k.startswith(GENAI_PREFIXES) for k in span.attrs) or any(
        e.name.startswith("gen_ai.") for e in (*span.events, *span.logs)
    )


def span_kind(a: dict) -> str:
    op = str(a.get("gen_ai.operation.name") or "").lower()
    oi = str(a.get("openinference.span.kind") or "").upper()
    tl = str(a.get("traceloop.span.kind") or "").lower()
    if op == "execute_tool" or oi == "TOOL" or tl == "tool":
        return "tool"
    if op in MODEL_OPS or oi == "LLM" or "llm.request.type" in a:
        return "model"
    if op in AGENT_OPS or oi in ("AGENT", "CHAIN") or tl in ("agent", "workflow", "task"):
        return "agent"
    if any(_OPENLLMETRY.match(k) and ".completion." in k for k in a):
        return "model"
    return "tool" if "gen_ai.tool.name" in a and not op else "other"


def read_span(span: Span) -> View:
    a = span.attrs
    view = View(span_kind(a))
    if view.kind == "tool":
        _tool(span, view)
        return view
    events = [*span.events, *span.logs, *_attribute_events(a, view)]
    for e in events:  # the newest conventions as one event per call
        if e.name == "gen_ai.client.inference.operation.details":
            a = {**e.attrs, **a}
    view.inputs = (
        _semconv(a, "input", view) or _flat(a, "input", view) or _events(events, "input", view)
    )
    view.outputs = (
        _semconv(a, "output", view) or _flat(a, "output", view) or _events(events, "output", view)
    )
    if view.kind == "model":
        view.model = as_str(_first(a, "gen_ai.response.model", "gen_ai.request.model",
                                 "llm.model_name", "llm.response.model", "llm.request.model"))  # fmt: skip
        view.usage = (
            _int(_first(a, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                        "llm.token_count.prompt", "llm.usage.prompt_tokens")),
            _int(_first(a, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                        "llm.token_count.completion", "llm.usage.completion_tokens")),
        )  # fmt: skip
    return view


def _tool(span: Span, view: View) -> None:
    a = span.attrs
    name = as_str(_first(a, "gen_ai.tool.name", "tool.name", "traceloop.entity.name")) or (
        span.name.removeprefix("execute_tool").strip() or None
    )
    call_id = as_str(_first(a, "gen_ai.tool.call.id", "tool_call.id", "tool.call.id"))
    args = _first(a, "gen_ai.tool.call.arguments", "tool_arguments", "input.value")
    if args is None and "traceloop.entity.input" in a:
        args = _unwrap(parsed(a["traceloop.entity.input"]), ("kwargs", "args", "inputs"))
    result = _first(a, "gen_ai.tool.call.result", "tool_response", "output.value")
    if result is None and "traceloop.entity.output" in a:
        result = _unwrap(parsed(a["traceloop.entity.output"]), ("outputs", "output"))
    failed = span.status == "ERROR" or a.get("error.type") is not None
    is_error = True if failed else (False if span.status == "OK" else None)
    text = None if result is None else (result if isinstance(result, str) else as_json(result))
    if failed and not text:
        text = _error_text(span)
    view.call = Atom("call", "assistant", None, call_id, name, parsed(args) if args else None)
    view.result = Atom("result", "tool", text, call_id, name, is_error=is_error)


def _error_text(span: Span) -> str:
    """A failed tool's text: the status message, else the exception, else the error type."""
    if span.status_message:
        return span.status_message
    for e in span.events:
        if e.name == "exception":
            kind, message = e.attrs.get("exception.type"), e.attrs.get("exception.message")
            return ": ".join(str(x) for x in (kind, message) if x) or "Error"
    return str(span.attrs.get("error.type") or "Error")


def _semconv(a: dict, side: str, view: View) -> list[list[Atom]]:
    key = f"gen_ai.{side}.messages"
    out = []
    if side == "input" and a.get("gen_ai.system_instructions") is not None:
        parts = _loaded(a, "gen_ai.system_instructions", view)
        if isinstance(parts, str):
            parts = [{"type": "text", "content": parts}]
        if isinstance(parts, list):
            out.append(message_atoms({"role": "system", "parts": parts}, key, view.problems))
    messages = _loaded(a, key, view)
    if messages is None:
        return out
    if not isinstance(messages, list):
        view.problems.append(f"{key} is not a list of messages")
        return out
    if side == "output":
        messages = messages[:1]
    out += [message_atoms(m, f"{key}[{i}]", view.problems) for i, m in enumerate(messages)]
    return [m for m in out if m]


def _flat(a: dict, side: str, view: View) -> list[list[Atom]]:
    """OpenLLMetry and OpenInference messages, flattened into indexed attributes."""
    groups: dict[int, dict[str, Any]] = {}
    prefix = "prompt" if side == "input" else "completion"
    for k, v in a.items():
        m = _OPENLLMETRY.match(k)
        if m and m.group(1) == prefix:
            groups.setdefault(int(m.group(2)), {})[m.group(3)] = v
    label = f"gen_ai.{prefix}"
    if not groups:
        for k, v in a.items():
            m = _OPENINFERENCE.match(k)
            if m and m.group(1) == side:
                groups.setdefault(int(m.group(2)), {})[m.group(3)] = v
        label = f"llm.{side}_messages"
    indices = sorted(groups)[:1] if side == "output" else sorted(groups)
    out = [message_atoms(unflatten(groups[i]), f"{label}.{i}", view.problems) for i in indices]
    return [m for m in out if m]


def _events(events: list[Event], side: str, view: View) -> list[list[Atom]]:
    out: list[list[Atom]] = []
    for e in events:
        body = _body(e)
        if side == "input" and e.name in EVENT_ROLES:
            out.append(message_atoms(body, e.name, view.problems, default_role=EVENT_ROLES[e.name]))
        elif side == "input" and e.name == "gen_ai.content.prompt":
            prompt = parsed(e.attrs.get("gen_ai.prompt"))
            for m in prompt if isinstance(prompt, list) else []:
                out.append(message_atoms(m, e.name, view.problems))
        elif side == "output" and e.name == "gen_ai.choice" and not out:
            if str(body.get("index") or 0) == "0":  # the choice the run went on with
                out.append(message_atoms(body, e.name, view.problems, default_role="assistant"))
        elif side == "output" and e.name == "gen_ai.content.completion" and not out:
            done = parsed(e.attrs.get("gen_ai.completion"))
            first = done[0] if isinstance(done, list) and done else done
            if isinstance(first, dict):
                out.append(message_atoms(first, e.name, view.problems, default_role="assistant"))
    return [m for m in out if m]


def _attribute_events(a: dict, view: View) -> list[Event]:
    """Message events kept as a JSON list in an ``events`` attribute, one body per event."""
    if "events" not in a:
        return []
    bodies = _loaded(a, "events", view)
    if not isinstance(bodies, list):
        return []
    return [Event(str(b.get("event.name")), None, {}, b) for b in bodies
            if isinstance(b, dict) and str(b.get("event.name", "")).startswith("gen_ai.")]  # fmt: skip


def _body(e: Event) -> dict:
    if isinstance(e.body, dict):
        return e.body
    if isinstance(e.body, str):
        return {"content": e.body}
    content = e.attrs.get("gen_ai.event.content")
    if content is not None:
        content = parsed(content)
        return content if isinstance(content, dict) else {"content": content}
    return {k: v for k, v in e.attrs.items() if not k.startswith(("gen_ai.", "event."))}


def _loaded(a: dict, key: str, view: View) -> Any:
    value = a.get(key)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        if key == "gen_ai.system_instructions":
            return value  # plain text instructions
        view.problems.append(f"{key} is not valid JSON ({_TRUNCATED}); its messages are skipped")
        return None


def _unwrap(value: Any, keys: tuple[str, ...]) -> Any:
    """OpenLLMetry's entity input / output wrappers (``{"args": [], "kwargs": {...}}``)."""
    if isinstance(value, dict):
        for key in keys:
            inner = value.get(key)
            if inner not in (None, [], {}):
                return inner[0] if isinstance(inner, list) and len(inner) == 1 else inner
    return value


def _first(a: dict, *keys: str) -> Any:
    for key in keys:
        if a.get(key) is not None:
            return a[key]
    return None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
