"""An in-process stand-in for the model layer's client, driven by a scripted policy, for fast
unit tests of the runner and the stages.

``FakeLLM(policy).achat(request)`` calls ``policy(request) -> dict`` (an assistant message: content
and/or tool_calls with JSON-string arguments, as a server would send) and returns a result shaped
like the model layer's ``ChatResult``. The loopback tests drive the real client over HTTP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeResult:
    ok: bool
    content: str | None = None
    tool_calls: list[dict] = field(default_factory=list)
    message: dict = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False
    error: str | None = None


class FakeLLM:
    def __init__(self, policy, *, fail_on: set[str] | None = None):
        self.policy = policy
        self.fail_on = fail_on or set()
        self.requests: list[Any] = []

    async def achat(self, request) -> FakeResult:
        self.requests.append(request)
        if request.tag in self.fail_on:
            return FakeResult(ok=False, error="HTTP 500 after 3 attempts")
        message = self.policy(request)
        calls = []
        for c in message.get("tool_calls") or []:
            raw = c["function"]["arguments"]
            try:
                args = json.loads(raw)
            except json.JSONDecodeError:
                args = None
            calls.append(
                {"id": c.get("id"), "name": c["function"]["name"], "arguments": args, "raw": raw}
            )
        prompt = sum(len(str(m.get("content") or "")) for m in request.messages)
        return FakeResult(
            ok=True,
            content=message.get("content"),
            tool_calls=calls,
            message={"role": "assistant", **message},
            tokens_in=prompt // 4,
            tokens_out=10,
            cost_usd=0.0001,
        )

    async def release(self) -> None:
        self.released = True


def tool_call(name: str, args: dict | str, call_id: str = "c1") -> dict:
    raw = args if isinstance(args, str) else json.dumps(args)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}
