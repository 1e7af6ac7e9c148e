"""What a LangSmith run's inputs and outputs hold -> ``Atom`` s (messages, tool calls, results).

LangSmith keeps whatever the traced code gave it, so an LLM run's messages come in the shapes of
the tracer that wrote it; each is brought to the chat-completions shape and read by
``otel_messages.message_atoms``:

- LangChain: inputs ``{"messages": [[message, ...]]}`` (one list per prompt of the batch) and
  outputs ``{"generations": [[{"text", "message"}]], "llm_output": {"model_name"}}``, each
  message serialised as ``{"lc": 1, "type": "constructor", "id": [..., "AIMessage"],
  "kwargs": {...}}`` (or as ``{"type": "ai", "data": {...}}``, or plain with ``type``);
  ``tool_calls`` as ``{"name", "args", "id"}`` (else OpenAI's in ``additional_kwargs``); a
  ``ToolMessage`` with ``status: "error"`` is an error result;
- the SDK's OpenAI wrapper: inputs are the request (``messages``, ``model``), outputs the
  response (``choices[0].message``, ``model``); the Responses API's ``input`` / ``output`` items
  (``message``, ``function_call``, ``function_call_output``) and ``instructions``;
- the Anthropic wrapper: ``system`` apart, content blocks ``tool_use`` / ``tool_result``;
- ``{"message": {...}}`` or a bare message as output, ``{"prompts": [...]}`` for text LLMs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.ingest.formats.otel_messages import Atom, as_str, as_text, message_atoms
from pipeline.ingest.record import text_of

LC_ROLES = {
    "HumanMessage": "user", "AIMessage": "assistant", "AIMessageChunk": "assistant",
    "SystemMessage": "system", "ToolMessage": "tool", "FunctionMessage": "function",
}  # fmt: skip
TYPE_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
              "function": "function", "developer": "system"}  # fmt: skip
_BLOCKS = ("tool_use", "tool_result")  # Anthropic blocks that are calls and results, not text


def input_atoms(inputs: dict, where: str, problems: list[str]) -> list[list[Atom]]:
    """The messages an LLM run was given, one list of atoms per message."""
    messages: list[Any] = []
    if isinstance(inputs.get("system"), str | list):
        messages.append({"role": "system", "content": inputs["system"]})
    if isinstance(inputs.get("instructions"), str):
        messages.append({"role": "system", "content": inputs["instructions"]})
    given = inputs.get("messages")
    if isinstance(given, list) and given and all(isinstance(m, list) for m in given):
        if not all(_pair(m) for m in given):
            given = given[0]  # a batch of prompts, not ("role", "text") pairs: agents send one
    if isinstance(given, list):
        messages += given
    elif isinstance(inputs.get("input"), str):
        messages.append({"role": "user", "content": inputs["input"]})
    elif isinstance(inputs.get("input"), list):
        messages += inputs["input"]
    elif isinstance(inputs.get("prompts"), list) and inputs["prompts"]:
        messages.append({"role": "user", "content": inputs["prompts"][0]})
    return _atoms(messages, where, problems)


def output_atoms(outputs: dict, where: str, problems: list[str]) -> list[list[Atom]]:
    """The message(s) an LLM run answered with."""
    generations = outputs.get("generations")
    if isinstance(generations, list) and generations:
        first = generations[0]
        first = (first[0] if first else None) if isinstance(first, list) else first
        if isinstance(first, dict):
            found = first.get("message") or {"role": "assistant", "content": first.get("text")}
            return _atoms([found], where, problems)
    choices = outputs.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        found = choice.get("message") or {"role": "assistant", "content": choice.get("text")}
        return _atoms([found], where, problems)
    if isinstance(outputs.get("output"), list):  # Responses API items
        return _atoms(outputs["output"], where, problems, default_role="assistant")
    if isinstance(outputs.get("message"), dict):
        return _atoms([outputs["message"]], where, problems)
    if plain(outputs) is not None:  # the message itself (Anthropic's response, an AIMessage)
        return _atoms([outputs], where, problems)
    if isinstance(outputs.get("output"), str):
        return _atoms([{"role": "assistant", "content": outputs["output"]}], where, problems)
    return []


def tool_message(value: Any) -> dict | None:
    """A LangChain ``ToolMessage`` (serialised or plain) in chat-completions shape, else None."""
    msg = plain(value)
    return msg if msg is not None and msg.get("role") == "tool" else None


def plain(message: Any) -> dict | None:
    """A message in the chat-completions shape (role, content, tool_calls, tool_call_id); None
    for a value that is not a message."""
    if not isinstance(message, dict):
        return None
    role = None
    if message.get("lc") == 1 and isinstance(message.get("kwargs"), dict):
        ids = message.get("id")
        cls = ids[-1] if isinstance(ids, list) and ids else None
        message = message["kwargs"]
        role = LC_ROLES.get(cls) or (message.get("role") if cls == "ChatMessage" else None)
    elif isinstance(message.get("data"), dict) and "role" not in message:  # messages_to_dict
        role = TYPE_ROLES.get(str(message.get("type")))
        message = message["data"]
    role = role or message.get("role") or TYPE_ROLES.get(str(message.get("type")))
    if role is None:
        return None
    out = {k: message[k] for k in ("content", "name", "tool_call_id", "status") if k in message}
    out["role"] = role
    calls = [_openai_call(c) for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    extra = message.get("additional_kwargs")
    if not calls and isinstance(extra, dict) and isinstance(extra.get("tool_calls"), list):
        calls = extra["tool_calls"]
    if isinstance(message.get("function_call"), dict):
        out["function_call"] = message["function_call"]
    content = out.get("content")
    if isinstance(content, list):
        # A part whose type is not text is no part type at all: read it as an untyped part.
        out["content"] = content = [
            {k: v for k, v in b.items() if k != "type"}
            if isinstance(b, dict) and not isinstance(b.get("type"), str | None) else b
            for b in content
        ]  # fmt: skip
        blocks = [b for b in content if isinstance(b, dict) and b.get("type") in _BLOCKS]
        if blocks:
            out["content"] = [b for b in content if not isinstance(b, dict)
                              or b.get("type") not in _BLOCKS]  # fmt: skip
            if not calls:
                calls = [_openai_call(b) for b in blocks if b.get("type") == "tool_use"]
            results = [b for b in blocks if b.get("type") == "tool_result"]
            if results:
                out["results"] = results
    if calls:
        out["tool_calls"] = calls
    return out


def _atoms(messages: list, where: str, problems: list[str], default_role: str | None = None):
    out = []
    for i, raw in enumerate(messages):
        here = f"{where} message {i}"
        item = _response_item(raw) if isinstance(raw, dict) and "type" in raw else None
        msg = item or plain(raw if not isinstance(raw, list) else _pair(raw))
        if msg is None and isinstance(raw, dict) and default_role and "content" in raw:
            msg = plain({**raw, "role": default_role})
        if msg is None:
            if not (isinstance(raw, dict) and raw.get("type") == "reasoning"):
                problems.append(f"{here}: not a message the reader knows")
            continue
        for block in msg.pop("results", []):  # Anthropic results ride in a user message
            text = block.get("content")
            out.append([Atom("result", "tool", step_text(text), as_str(block.get("tool_use_id")),
                             is_error=block.get("is_error"))])  # fmt: skip
        atoms = message_atoms(msg, here, problems)
        if msg.get("status") == "error":
            atoms = [dataclasses.replace(a, is_error=True) if a.kind == "result" else a
                     for a in atoms]  # fmt: skip
        if atoms:
            out.append(atoms)
    return out


def _response_item(item: dict) -> dict | None:
    kind = item.get("type")
    if kind == "function_call":
        call = {
            "id": item.get("call_id"),
            "function": {"name": item.get("name"), "arguments": item.get("arguments")},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    if kind == "function_call_output":
        return {"role": "tool", "tool_call_id": item.get("call_id"),
                "content": step_text(item.get("output"))}  # fmt: skip
    if kind == "message" and "role" in item:
        return plain({k: v for k, v in item.items() if k != "type"})
    return None


def _openai_call(call: dict) -> dict:
    """A LangChain ``{"name", "args", "id"}`` or Anthropic ``tool_use`` call in OpenAI's shape."""
    if isinstance(call.get("function"), dict):
        return call
    args = call.get("args", call.get("input", call.get("arguments")))
    return {"id": call.get("id"), "function": {"name": call.get("name"), "arguments": args}}


def _pair(value: list) -> Any:
    """LangChain's ``("user", "text")`` message tuples, as JSON lists."""
    if len(value) == 2 and all(isinstance(v, str) for v in value):
        return {"role": TYPE_ROLES.get(value[0], value[0]), "content": value[1]}
    return None


def fields_of(message: Any) -> dict:
    """A message's own fields: a serialised LangChain message's ``kwargs``, else the message."""
    if not isinstance(message, dict):
        return {}
    inner = message.get("kwargs") if message.get("lc") == 1 else message.get("data")
    return inner if isinstance(inner, dict) else message


def step_text(value: Any) -> str | None:
    """A result's text: text as it is, content blocks joined, other values as JSON."""
    return text_of(value) if isinstance(value, list) else as_text(value)
