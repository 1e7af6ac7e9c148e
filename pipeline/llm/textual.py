"""Tool calls as text, for servers or models without native tool calling.

The tools are described in the system message and the model calls one per turn by replying with
one JSON object ``{"tool": NAME, "arguments": {...}}``; any other reply is its answer. A
conversation kept in the native shape (assistant messages with ``tool_calls``, ``tool`` messages
with results) is rewritten for the wire by `to_text`: calls become the JSON the model would have
written, results become user messages naming the tool. `read_action` reads a reply back into a
native tool call, so the callers' tool loop is the same in both protocols.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pipeline.llm.extract import find_json

PROTOCOL = (
    "You can use these tools. To call one, reply with only this JSON object and nothing else:\n"
    '{{"tool": "<tool name>", "arguments": {{<the arguments>}}}}\n'
    "One tool per reply; its result comes back in the next message. When you need no more "
    "tools, reply with your answer instead.\nTools:\n{tools}"
)
FORCED = 'Call the tool "{name}" now, replying with only the JSON object for it.'
NO_TOOLS = "Do not call any tool now: reply with your answer."


def describe(tools: list[dict]) -> str:
    lines = []
    for spec in tools:
        fn = spec.get("function") or {}
        params = (fn.get("parameters") or {}).get("properties") or {}
        args = ", ".join(
            f"{k}: {v.get('type', 'value')}"
            + (f" ({v['description']})" if v.get("description") else "")
            for k, v in params.items()
        )
        lines.append(f"- {fn.get('name')}({args}): {fn.get('description') or ''}".rstrip(": "))
    return "\n".join(lines)


def _action_text(call: dict) -> str:
    fn = call.get("function") or {}
    raw = fn.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        args = raw
    return json.dumps({"tool": fn.get("name"), "arguments": args}, ensure_ascii=False)


def to_text(messages: list[dict], tools: list[dict], tool_choice: Any) -> list[dict]:
    """The conversation with tools in the text protocol (see the module docstring)."""
    names = {}
    out: list[dict] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                names[call.get("id")] = (call.get("function") or {}).get("name")
            said = (message.get("content") or "").strip()
            actions = "\n".join(_action_text(c) for c in message["tool_calls"])
            out.append({"role": "assistant", "content": f"{said}\n{actions}".strip()})
        elif role == "tool":
            name = names.get(message.get("tool_call_id")) or "the tool"
            text = f"Result of {name}:\n{message.get('content') or ''}"
            if out and out[-1]["role"] == "user":  # several results of one turn: one message
                out[-1] = {"role": "user", "content": f"{out[-1]['content']}\n\n{text}"}
            else:
                out.append({"role": "user", "content": text})
        else:
            out.append(copy.copy(message))
    notes = []
    if tools and tool_choice != "none":
        notes.append(PROTOCOL.format(tools=describe(tools)))
        if isinstance(tool_choice, dict):
            notes.append(FORCED.format(name=(tool_choice.get("function") or {}).get("name")))
    elif tools:
        notes.append(NO_TOOLS)
    if notes:
        note = "\n\n".join(notes)
        if out and out[0].get("role") == "system":
            out[0] = {**out[0], "content": f"{out[0].get('content') or ''}\n\n{note}".strip()}
        else:
            out.insert(0, {"role": "system", "content": note})
    return out


def read_action(content: str | None, names: set[str], turn_id: str) -> dict | None:
    """A native tool call from a reply in the text protocol, or None if the reply is an answer."""
    try:
        value = find_json(content)
    except ValueError:
        return None
    if (
        isinstance(value, dict)
        and isinstance(value.get("tool_calls"), list)
        and value["tool_calls"]
    ):
        value = value["tool_calls"][0]
    if not isinstance(value, dict):
        return None
    fn = value.get("function") if isinstance(value.get("function"), dict) else {}
    name = value.get("tool") or value.get("name") or fn.get("name")
    if not isinstance(name, str) or name not in names:
        return None
    args = value.get("arguments", value.get("args", fn.get("arguments", {})))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            pass
    raw = json.dumps(args, ensure_ascii=False) if not isinstance(args, str) else args
    return {
        "id": f"call_{turn_id}",
        "type": "function",
        "function": {"name": name, "arguments": raw},
    }
