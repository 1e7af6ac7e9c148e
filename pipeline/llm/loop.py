"""One tool loop for every conversation in which a model calls tools: the agentic analyst's and
the evaluation agent's.

A turn asks the model (`Turns.request`: the turn's request, or why not to ask), checks the reply
(`Turns.checked`: the reply to go on with, or why to stop), ends the conversation on a failed
call, appends the reply (every tool call with an id: `tools.with_ids`), and then either hands a
reply without tool calls to `Turns.text` (which ends the conversation or lets it go on) or runs
each call (`Turns.call`) and appends its result as a tool message; `Turns.after_calls` may end the
conversation there (a submitted answer). After `max_turns` turns the loop ends on the turn limit.
What a conversation records (steps, usage, budgets) is its own; how turns follow each other is
written once, here. `tool_loop` never raises for what the model does: its end says how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pipeline.llm.tools import with_ids
from pipeline.llm.types import ChatRequest, ChatResult


@dataclass(frozen=True)
class End:
    """How a conversation ended: ``answered`` (a reply `text` took as the answer), ``submitted``
    (`after_calls` said so), ``failed`` (a model call failed: `result`), ``stopped`` (a hook's
    `why`: a budget, the window, a reply that was not the answer) or ``turn_limit``."""

    how: str
    turn: int
    why: str = ""
    result: ChatResult | None = None


class Turns(Protocol):
    def request(self, messages: list[dict], turn: int) -> ChatRequest | End: ...

    async def checked(
        self, result: ChatResult, messages: list[dict], turn: int
    ) -> ChatResult | End:
        """The reply to go on with (it may ask again), or an end."""
        ...

    def text(self, result: ChatResult, messages: list[dict], turn: int) -> End | None:
        """A reply without tool calls (already appended): an end, or None to go on."""
        ...

    async def call(
        self, call: dict, call_id: str, index: int, result: ChatResult, messages: list[dict]
    ) -> str:
        """Run the reply's `index`th tool call; its result's text."""
        ...

    def after_calls(self, turn: int) -> End | None: ...


async def tool_loop(llm, messages: list[dict], turns: Turns, max_turns: int) -> End:
    """Converse from `messages` (appended to in place) until an end; see the module docstring."""
    for turn in range(max_turns):
        request = turns.request(messages, turn)
        if isinstance(request, End):
            return request
        result = await turns.checked(await llm.achat(request), messages, turn)
        if isinstance(result, End):
            return result
        if not result.ok:
            return End("failed", turn, result.error or "", result)
        calls = list(result.tool_calls or [])
        message, ids = with_ids(result.message, calls, turn)
        messages.append(message)
        if not calls:
            if (end := turns.text(result, messages, turn)) is not None:
                return end
            continue
        for index, (call, call_id) in enumerate(zip(calls, ids, strict=True)):
            text = await turns.call(call, call_id, index, result, messages)
            messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
        if (end := turns.after_calls(turn)) is not None:
            return end
    return End("turn_limit", max_turns)
