"""Tools a model calls, for every tool loop (the agentic analyst's, the evaluation agent's).

A `Tool` is an OpenAI function tool with its handler. Its parameters are a JSON schema, or a
pydantic model whose schema is sent (titles left out) and which checks the arguments before the
handler sees them. `Tool.call` never raises: an unknown argument shape, a `ToolError` (the tool
refusing, in words the model can act on) or a broken handler comes back as an ``error: ...``
text with ``is_error`` set, so a conversation goes on. A sync handler runs in a worker thread (it
may block on the lake or a database); an async one on the loop.

`with_ids` gives every tool call of a reply an id (some servers omit them, and the text protocol
has none), so each tool message can name the call it answers. On servers without native tool
calls the model layer carries the same conversation as text (`pipeline.llm.textual`): the loops
do not change.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError


class ToolError(Exception):
    """A tool refused or failed; its message goes back to the model as an error result."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict | type[BaseModel]
    handler: Callable[[Any], Any]  # the arguments (a dict, or the pydantic instance) -> text
    submits: bool = False  # calling it ends the episode (the evaluation agent's answer)

    def spec(self) -> dict:
        params = self.parameters
        if isinstance(params, type) and issubclass(params, BaseModel):
            params = params.model_json_schema()
            params.pop("title", None)
            for prop in params.get("properties", {}).values():
                prop.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }

    async def call(self, args: Any, raw: str = "") -> tuple[str, bool]:
        """(result text, is_error) of one call; never raises."""
        if not isinstance(args, dict):
            return f"error: the arguments are not a JSON object: {raw[:200]!r}", True
        value: Any = args
        model = self.parameters
        if isinstance(model, type) and issubclass(model, BaseModel):
            try:
                value = model.model_validate(args)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or '(arguments)'}: {e['msg']}"
                    for e in exc.errors()[:5]
                )
                return f"error: bad arguments for {self.name}: {problems}", True
        try:
            if inspect.iscoroutinefunction(self.handler):
                out = await self.handler(value)
            else:
                out = await asyncio.to_thread(self.handler, value)
            return str(out), False
        except ToolError as exc:
            return f"error: {exc}", True
        except Exception as exc:  # a broken tool must not end the conversation
            return f"error: the tool failed: {type(exc).__name__}: {exc}", True


def unknown(name: str | None, names: list[str]) -> str:
    return f"error: no tool {name!r}; the tools are {', '.join(names)}"


def with_ids(message: dict, calls: list[dict], turn: int) -> tuple[dict, list[str]]:
    """The assistant message to send back, with an id on every tool call, and those ids."""
    message = dict(message)
    ids = [c.get("id") or f"call_{turn}_{i}" for i, c in enumerate(calls)]
    wire = message.get("tool_calls") or []
    if wire and len(wire) == len(ids):
        message["tool_calls"] = [{**w, "id": i} for w, i in zip(wire, ids, strict=True)]
    return message, ids
