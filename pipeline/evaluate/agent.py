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
from pipeline.llm.tools import unknown, with_ids

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
    steps = ep.builder
    steps.message("system", messages[0]["content"], 0)
    steps.message("user", messages[1]["content"], 1)
    # opening an episode's tools may block (a database per episode): keep it off the event loop
    tools = list(await asyncio.to_thread(env.tools, task)) + (skill.tools() if skill else [])
    by_name = {t.name: t for t in tools}
    specs = [t.spec() for t in tools]
    for turn in range(settings.max_turns):
        res = await llm.achat(
            ChatRequest(
                messages=list(messages),
                tools=specs,
                stage=settings.stage,
                tag=task.task_id,
                prompt_version=PROMPT_VERSION,
                temperature=settings.temperature,
                seed=settings.seed,
            )
        )
        ep.n_turns, ep.n_calls = turn + 1, ep.n_calls + 1
        ep.tokens_in += res.tokens_in or 0
        ep.tokens_out += res.tokens_out or 0
        ep.cost_usd += res.cost_usd or 0.0
        ep.cache_hits += int(bool(res.cache_hit))
        if not res.ok:
            ep.status, ep.error = "error", f"model call failed: {res.error}"
            return
        calls = list(res.tool_calls or [])
        message, ids = with_ids(res.message, calls, turn)
        messages.append(message)
        m_idx = len(messages) - 1
        if not calls:
            steps.message("assistant", res.content or "", m_idx)
            if turn + 1 < settings.max_turns:
                messages.append({"role": "user", "content": NUDGE})
                steps.message("user", NUDGE, len(messages) - 1)
            continue
        submitted = False
        for i, (call, call_id) in enumerate(zip(calls, ids, strict=True)):
            name, args = call.get("name"), call.get("arguments")
            raw = call.get("raw") or ""
            steps.call(
                name,
                args if args is not None else raw,
                call_id,
                m_idx,
                content=(res.content or None) if i == 0 else None,
            )
            tool = by_name.get(name or "")
            if tool is None:
                out, bad = unknown(name, list(by_name)), True
            elif tool.submits and submitted:
                out, bad = "error: an answer was already submitted", True
            else:
                out, bad = await tool.call(args, raw)
                if tool.submits and not bad:
                    submitted, ep.answer = True, args.get("answer", args)
            messages.append({"role": "tool", "tool_call_id": call_id, "content": out})
            steps.result(call_id, out, len(messages) - 1, is_error=bad, name=name)
        if submitted:
            ep.status = "submitted"
            return
    ep.status = "turn_limit"
