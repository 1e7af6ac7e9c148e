"""Messages as the GenAI tracing conventions record them -> ``Atom`` s, the steps-to-be.

Three shapes are read: the GenAI conventions' ``{"role", "parts": [...]}`` (parts of type text,
tool_call, tool_call_response; media and other parts without text become a typed placeholder
such as ``[image: image/png, 24 KB]``; reasoning is not a step), the chat-completions shape
(``content`` as text or blocks, ``tool_calls``, ``function_call``, role ``tool`` with
``tool_call_id``) the older events and OpenLLMetry / OpenInference attributes use, and a choice
(``{"index", "message": {...}}``). An assistant message's text goes on its first tool call, as
for every other format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pipeline.ingest.formats.chat import ROLE_ALIASES
from pipeline.ingest.placeholders import MEDIA_KINDS
from pipeline.ingest.record import CANONICAL, part_text, text_of

ROLES = {**ROLE_ALIASES, "model": "assistant", "chatbot": "assistant"}
_INDEXED = re.compile(r"^(\w+)\.(\d+)\.(.+)$")


@dataclass(slots=True, frozen=True)
class Atom:
    """One step-to-be: a text message, a tool call or a tool result."""

    kind: str  # text / call / result
    role: str
    text: str | None
    call_id: str | None = None
    name: str | None = None
    args: Any = None
    is_error: bool | None = None

    def key(self) -> tuple:
        """How a later span's copy of the atom is recognised: by call id where there is one,
        else by role and text (or tool and arguments)."""
        if self.call_id is not None and self.kind != "text":
            return (self.kind, self.call_id)
        return self.content_key()

    def keys(self) -> tuple:
        """Every key the atom is recorded under."""
        if self.call_id is not None and self.kind != "text":
            return ((self.kind, self.call_id), self.content_key())
        return (self.content_key(),)

    def content_key(self) -> tuple:
        if self.kind == "text":
            return ("text", self.role, norm_text(self.text))
        if self.kind == "call":
            return ("call~", self.name, CANONICAL.encode(parsed(self.args)))
        return ("result~", norm_text(self.text))


def message_atoms(
    m: Any, where: str, problems: list[str] | None, default_role: str | None = None
) -> list[Atom]:
    """One message (new ``parts`` shape, chat-completions shape or a choice) -> its atoms."""
    if not isinstance(m, dict):
        if problems is not None:
            problems.append(f"{where}: a message is not an object")
        return []
    if isinstance(m.get("message"), dict) and "role" not in m:  # a choice
        m = m["message"]
    raw_role = m.get("role") or default_role
    role = ROLES.get(str(raw_role).lower()) if raw_role is not None else None
    if role is None:
        if problems is not None:
            problems.append(f"{where}: unknown role {raw_role!r}; the message is skipped")
        return []
    texts: list[str] = []
    calls: list[Atom] = []
    results: list[Atom] = []
    if isinstance(m.get("parts"), list):
        for part in m["parts"]:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("content") or part.get("text") or ""))
            elif kind == "tool_call":
                calls.append(Atom("call", "assistant", None, as_str(part.get("id")),
                                  as_str(part.get("name")), part.get("arguments")))  # fmt: skip
            elif kind == "tool_call_response":
                out = part.get("response", part.get("result"))
                results.append(Atom("result", "tool", as_text(out), as_str(part.get("id"))))
            elif (
                kind not in MEDIA_KINDS
                and isinstance(part, dict)
                and isinstance(part.get("content"), str)
            ):
                texts.append(part["content"])  # reasoning and other part types are not steps
            elif (placeholder := part_text(part)) is not None:  # media and parts without text
                texts.append(placeholder)
    else:
        text = text_of(m.get("content"))
        if isinstance(text, str) and text[:1] == "[" and text.rstrip()[-1:] == "]":
            blocks = parsed(text)  # content blocks serialised to one string
            text = text_of(blocks) if isinstance(blocks, list) else text
        if text:
            texts.append(text)
        tool_calls = m.get("tool_calls")
        if not tool_calls and isinstance(m.get("function_call"), dict):
            tool_calls = [{"function": m["function_call"]}]
        for call in tool_calls if isinstance(tool_calls, list) else []:
            fn = call.get("function") if isinstance(call.get("function"), dict) else call
            calls.append(Atom("call", "assistant", None, as_str(call.get("id")),
                              as_str(fn.get("name")), fn.get("arguments")))  # fmt: skip
        if role == "tool":
            call_id = as_str(m.get("tool_call_id") or m.get("id"))
            return [Atom("result", "tool", "\n\n".join(texts), call_id, as_str(m.get("name")))]
    text = "\n\n".join(texts)
    if role == "tool" and not results:
        results.append(Atom("result", "tool", text, None))
        text = ""
    atoms: list[Atom] = []
    if text and (role != "assistant" or not calls):
        atoms.append(Atom("text", role, text))
    elif role == "assistant" and not calls and not results:
        atoms.append(Atom("text", role, ""))
    if calls and role == "assistant" and text:
        first = calls[0]
        calls[0] = Atom("call", "assistant", text, first.call_id, first.name, first.args)
    return [*atoms, *calls, *results]


def unflatten(flat: dict[str, Any]) -> dict:
    """``tool_calls.0.name`` style keys -> nested objects and lists (OpenInference's
    ``tool_call.`` / ``message_content.`` infixes dropped)."""
    msg: dict[str, Any] = {}
    nested: dict[str, dict[int, dict]] = {}
    for k, v in flat.items():
        m = _INDEXED.match(k)
        if m is None:
            msg[k] = v
            continue
        field_ = m.group(3).removeprefix("tool_call.").removeprefix("message_content.")
        item = nested.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})
        if field_.startswith("function."):
            item.setdefault("function", {})[field_.removeprefix("function.")] = v
        else:
            item[field_] = v
    for name, items in nested.items():
        msg[name] = [items[i] for i in sorted(items)]
    if isinstance(msg.get("contents"), list) and msg.get("content") is None:
        msg["content"] = msg["contents"]
    if "function_call.name" in msg:
        msg["function_call"] = {"name": msg.get("function_call.name"),
                                "arguments": msg.get("function_call.arguments")}  # fmt: skip
    return msg


def parsed(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def norm_text(text: str | None) -> str:
    """Text as compared between spans: JSON canonical, other text with whitespace collapsed."""
    text = text or ""
    if text[:1] in "{[":
        value = parsed(text)
        if not isinstance(value, str):
            return CANONICAL.encode(value)
    return " ".join(text.split())


def as_text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else as_json(value)


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def as_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
