"""The agent runner: one episode of a tool-calling loop over the model layer, with a turn limit.

An episode starts from the environment's instructions (plus the skill, when one is loaded) and
the task's prompt, asks the model, runs the tools it calls, and stops when it calls the submit
tool, when the model fails (recorded, never raised), or after ``max_turns`` model calls. It
returns an ``Episode``: the steps in the lake's native shape, the answer and the usage.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.evaluate.env import Environment, Task
from pipeline.evaluate.skill import Skill
from pipeline.ingest.record import StepBuilder
from pipeline.llm import ChatRequest
from pipeline.llm.loop import End, tool_loop
from pipeline.llm.tools import unknown

# the order of ingest's step tuples
STEP_FIELDS = (
    "role",
    "kind",
    "content",
    "tool_name",
    "tool_args",
    "tool_call_id",
    "call_step_idx",
    "is_error",
    "message_idx",
)

PROMPT_VERSION = "agent-v1"
NUDGE = "Call `submit` with your answer, or another tool if you need more information."


@dataclass(frozen=True)
class AgentSettings:
    max_turns: int = 12
    temperature: float | None = None  # None: the model settings' default
    seed: int | None = None
    stage: str = "rollout"


@dataclass
class Episode:
    task: Task
    model: str
    builder: StepBuilder = field(default_factory=StepBuilder)
    answer: Any = None
    status: str = "turn_limit"  # submitted / turn_limit / error
    error: str | None = None
    n_turns: int = 0
    n_calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    seconds: float = 0.0

    @property
    def steps(self) -> list[dict]:
        """The steps as rows of the steps table (minus the ids the writer adds)."""
        return [dict(zip(STEP_FIELDS, s, strict=True)) for s in self.builder.steps]


def system_prompt(env: Environment, skill: Skill | None) -> str:
    return env.system_prompt if skill is None else f"{env.system_prompt}\n\n{skill.prompt()}"


async def run_episode(
    llm, env: Environment, task: Task, skill: Skill | None, settings: AgentSettings, model: str
) -> Episode:
    """Play one task to the end; every fault becomes part of the episode, not an exception."""
    ep = Episode(task=task, model=model)
    clock = time.perf_counter()
    try:
        await _loop(llm, env, task, skill, settings, ep)
    except Exception as exc:  # environment faults (a missing table, a bad tool list)
        ep.status, ep.error = "error", f"{type(exc).__name__}: {exc}"
    ep.finished_at = datetime.now(UTC)
    ep.seconds = time.perf_counter() - clock
    return ep


async def _loop(llm, env, task, skill, settings, ep: Episode) -> None:
    messages: list[dict] = [
        {"role": "system", "content": system_prompt(env, skill)},
        {"role": "user", "content": task.prompt},
    ]
    ep.builder.message("system", messages[0]["content"], 0)
    ep.builder.message("user", messages[1]["content"], 1)
    # opening an episode's tools may block (a database per episode): keep it off the event loop
    tools = list(await asyncio.to_thread(env.tools, task)) + (skill.tools() if skill else [])
    end = await tool_loop(llm, messages, _Turns(task, tools, settings, ep), settings.max_turns)
    if end.how == "failed":
        ep.status, ep.error = "error", f"model call failed: {end.result.error}"
    elif end.how == "submitted":
        ep.status = "submitted"
    else:
        ep.status = "turn_limit"


class _Turns:
    """The agent's side of the tool loop (`pipeline.llm.loop`): every call counted, every message,
    call and result recorded as a step, a reply without a tool call answered with a nudge to
    submit, and the episode ended by the first accepted `submit`."""

    def __init__(self, task: Task, tools: list, settings: AgentSettings, ep: Episode):
        self.task, self.settings, self.ep = task, settings, ep
        self.by_name = {t.name: t for t in tools}
        self.specs = [t.spec() for t in tools]
        self.submitted = False

    def request(self, messages: list[dict], turn: int) -> ChatRequest:
        s = self.settings
        return ChatRequest(
            messages=list(messages),
            tools=self.specs,
            stage=s.stage,
            tag=self.task.task_id,
            prompt_version=PROMPT_VERSION,
            temperature=s.temperature,
            seed=s.seed,
        )

    async def checked(self, res, messages: list[dict], turn: int):
        ep = self.ep
        ep.n_turns, ep.n_calls = turn + 1, ep.n_calls + 1
        ep.tokens_in += res.tokens_in or 0
        ep.tokens_out += res.tokens_out or 0
        ep.cost_usd += res.cost_usd or 0.0
        ep.cache_hits += int(bool(res.cache_hit))
        return res

    def text(self, res, messages: list[dict], turn: int) -> None:
        self.ep.builder.message("assistant", res.content or "", len(messages) - 1)
        if turn + 1 < self.settings.max_turns:
            messages.append({"role": "user", "content": NUDGE})
            self.ep.builder.message("user", NUDGE, len(messages) - 1)

    async def call(self, call: dict, call_id: str, index: int, res, messages: list[dict]) -> str:
        name, args = call.get("name"), call.get("arguments")
        raw = call.get("raw") or ""
        reply_idx = len(messages) - 1 - index  # the reply, before this call's earlier results
        content = (res.content or None) if index == 0 else None
        self.ep.builder.call(
            name, args if args is not None else raw, call_id, reply_idx, content=content
        )
        tool = self.by_name.get(name or "")
        if tool is None:
            out, bad = unknown(name, list(self.by_name)), True
        elif tool.submits and self.submitted:
            out, bad = "error: an answer was already submitted", True
        else:
            out, bad = await tool.call(args, raw)
            if tool.submits and not bad:
                self.submitted, self.ep.answer = True, args.get("answer", args)
        self.ep.builder.result(call_id, out, len(messages), is_error=bad, name=name)
        return out

    def after_calls(self, turn: int) -> End | None:
        return End("submitted", turn) if self.submitted else None
