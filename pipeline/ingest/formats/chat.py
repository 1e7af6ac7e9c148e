"""OpenAI chat-completions messages -> steps: shared by every format that stores that shape.

Handles ``tool_calls`` (``function.name`` / ``function.arguments``, arguments as a JSON string
or an object), the legacy ``function_call`` / role ``function`` pair, ``developer`` as a system
role, and content given as a list of parts.
"""

from __future__ import annotations

from typing import Any

from pipeline.ingest.record import StepBuilder, json_type, text_of

ROLE_ALIASES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "tool": "tool",
    "function": "tool",
    "ipython": "tool",
}


class MessageError(ValueError):
    """A message of a run cannot be read; `index` is its position in the message list."""

    def __init__(self, index: int, message: str):
        super().__init__(f"message {index}: {message}")
        self.index = index


def chat_steps(
    messages: list[Any],
    *,
    skip_roles: frozenset[str] = frozenset(),
    is_error=None,
) -> StepBuilder:
    """Steps of a list of chat messages. `is_error(message, text)` may flag tool results."""
    b = StepBuilder()
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise MessageError(i, f"expected an object, got {json_type(msg)}")
        raw_role = msg.get("role")
        if raw_role in skip_roles:
            continue
        role = ROLE_ALIASES.get(str(raw_role).lower()) if raw_role is not None else None
        if role is None:
            raise MessageError(i, f"unknown role {raw_role!r}")
        content = text_of(msg.get("content"))
        if role == "assistant":
            calls = msg.get("tool_calls") or []
            if not calls and isinstance(msg.get("function_call"), dict):
                calls = [{"function": msg["function_call"]}]
            if not isinstance(calls, list):
                raise MessageError(i, "tool_calls is not a list")
            for j, call in enumerate(calls):
                if not isinstance(call, dict):
                    raise MessageError(i, f"tool call {j} is not an object")
                fn = call.get("function") if isinstance(call.get("function"), dict) else call
                b.call(
                    fn.get("name"),
                    fn.get("arguments", fn.get("args", fn.get("input"))),
                    call.get("id"),
                    i,
                    content=content if j == 0 else None,
                )
            if not calls:
                b.message("assistant", content if content is not None else "", i)
        elif role == "tool":
            flag = msg.get("is_error")
            if flag is None and is_error is not None:
                flag = is_error(msg, content)
            b.result(
                msg.get("tool_call_id"),
                content,
                i,
                is_error=flag,
                name=msg.get("name"),
            )
        else:
            b.message(role, content if content is not None else "", i)
    return b
