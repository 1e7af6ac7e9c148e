"""Scripted model answers for the model analysts' tests: lessons citing the run's own steps.

The loopback server hands every chat request to a responder; these helpers read which run a
request is about (the rendered header "Trajectory <id> | ...") and its step numbers, and build
answers in the shape the analysts ask for.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.lake import Lake
from tests.analyse import builders, domains

_TRAJ = re.compile(r"^Trajectory (\S+) \|", re.M)
_STEP = re.compile(r"^\[(\d+)\]", re.M)
JUDGE = "Whether this run succeeded is not recorded"


def run_text(body: dict) -> str:
    return body["messages"][1]["content"]


def trajectory_of(body: dict) -> str:
    return _TRAJ.search(run_text(body)).group(1)


def steps_of(body: dict) -> list[int]:
    return [int(s) for s in _STEP.findall(run_text(body))]


def is_judge(body: dict) -> bool:
    return JUDGE in body["messages"][0]["content"]


def lesson(steps: list[int], **over: Any) -> dict:
    return {
        "kind": "failure_cause",
        "title": "Pass the exact quantity the user asked for to place_order",
        "description": "orders with several items",
        "content": "At the order step the agent passed a quantity the user did not ask for.",
        "target_section": "Placing orders",
        "op": "add",
        "evidence_steps": steps,
        "tool_name": "place_order",
        "confidence": 0.8,
    } | over


def answer(body: dict, lessons: list[dict] | None = None, outcome: str = "failure") -> dict:
    """A valid answer for this request's run: one lesson on its first two steps by default,
    with a judgement when the run's outcome is unknown."""
    out: dict[str, Any] = {
        "lessons": lessons if lessons is not None else [lesson(steps_of(body)[:2])]
    }
    if is_judge(body):
        out = {
            "judgement": {"outcome": outcome, "reason": "step 1 shows it", "confidence": 0.7}
        } | out
    return out


def small_lake(lake: Lake) -> Lake:
    """The shop and QA pools of the miner's tests (20 runs, gold actions and answers)."""
    builders.write(lake, domains.shop_runs() + domains.qa_runs())
    return lake
