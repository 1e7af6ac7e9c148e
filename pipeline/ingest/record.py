"""The record model every format adapter produces, before it becomes rows of the lake.

An adapter reads one raw file and yields, per record of that file, one of:

- ``Run``: a trajectory (run-level fields + its steps, built with ``StepBuilder``);
- ``BadRecord``: a record that could not be read (becomes a row of ``ingest_errors``);
- ``Duplicate``: a record that repeats one already read (e.g. a log that reprints a solved run).

``StepBuilder`` owns the rules every format shares: one step per message, per tool call and per
tool result; tool-call ids made unique within the run when the source reuses them (``id#2``);
each result linked to the most recent unanswered call with its id (``call_step_idx``); tool
arguments stored as canonical JSON.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.ingest.placeholders import MEDIA_KINDS, placeholder

# One step, in the column order of the steps table (minus the ids the writer adds):
# (role, kind, content, tool_name, tool_args, tool_call_id, call_step_idx, is_error, message_idx)
Step = tuple

SUCCESS_REWARD = 1.0  # a numeric reward at or above this counts as a success

SUCCESS_WORDS = {
    "success",
    "succeeded",
    "successful",
    "pass",
    "passed",
    "correct",
    "resolved",
    "solved",
}
SUCCESS_WORDS |= {"true", "yes", "ok", "1", "1.0"}
FAILURE_WORDS = {
    "failure",
    "fail",
    "failed",
    "incorrect",
    "unresolved",
    "unsolved",
    "wrong",
    "halted",
}
FAILURE_WORDS |= {"false", "no", "error", "errored", "0", "0.0"}
UNKNOWN_WORDS = {"unknown", "", "none", "null", "n/a", "na", "?"}


@dataclass(slots=True)
class Run:
    """One trajectory as read from its source, before ids, labels and bookkeeping."""

    record: str  # where in the file: "line 12", "[17]", "trial 2, CORRECT, run 5 (line 1633)"
    steps: list[Step]
    native_id: str | None = None
    task_id: str | None = None
    model: str | None = None
    agent: str | None = None
    outcome: str | None = None  # success / failure; None when the source does not say
    reward: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BadRecord:
    """A record that could not be read; `error` says what is wrong in words a user can act on."""

    record: str
    error: str


@dataclass(slots=True)
class Duplicate:
    """A record that repeats one already read from the same file."""

    record: str
    reason: str


def normalize_outcome(value: Any) -> str | None:
    """'success' / 'failure' / None (unknown) from the many spellings sources use."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "success" if value else "failure"
    if isinstance(value, int | float):
        return outcome_from_reward(finite(float(value), "outcome"))
    text = str(value).strip().lower()
    if text in SUCCESS_WORDS:
        return "success"
    if text in FAILURE_WORDS:
        return "failure"
    if text in UNKNOWN_WORDS:
        return None
    raise ValueError(
        f"outcome {value!r} is not one of success/failure/unknown (or pass/fail, true/false, ...)"
    )


def outcome_from_reward(reward: float | None, threshold: float = SUCCESS_REWARD) -> str | None:
    if reward is None:
        return None
    return "success" if reward >= threshold else "failure"


def as_reward(value: Any) -> float | None:
    """A numeric reward, or None; booleans count as 1.0 / 0.0."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        reward = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"reward {value!r} is not a number") from None
    return finite(reward, "reward")


def finite(number: float, what: str) -> float:
    """`number` itself; a ValueError naming `what` for NaN and infinities, which JSON readers
    accept but which say nothing about how a run went (NaN would count as a failure, Infinity as
    a success)."""
    if not math.isfinite(number):
        raise ValueError(f"{what} {number} is not a finite number")
    return number


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages about records of the wrong shape."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


# Built once: json.dumps with options builds a new encoder per call, which dominates small values.
CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def canonical_args(value: Any) -> str:
    """Tool arguments as canonical JSON; a string that is not JSON is kept as a JSON string."""
    if value is None or value == "":
        return "{}"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return CANONICAL.encode(value)
    return CANONICAL.encode(value)


def text_of(content: Any) -> str | None:
    """Message content as text: strings as they are, lists of parts joined by blank lines (each
    part as ``part_text`` gives it)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            text = part_text(part)
            if text is not None:
                parts.append(text)
        return "\n\n".join(parts)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return content["text"]
    return json.dumps(content, ensure_ascii=False, sort_keys=True)


REASONING_PARTS = frozenset({"thinking", "redacted_thinking", "reasoning"})  # not steps


def part_text(part: Any) -> str | None:
    """One part of a content list as text: its text; for media and any other part without text,
    a typed placeholder such as ``[image: image/png, 24 KB]`` or ``[audio: wav]``, so no part
    is dropped without a trace; None for reasoning, which is not a step."""
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return None if part is None else json.dumps(part, ensure_ascii=False)
    kind = part.get("type")
    if kind in REASONING_PARTS:
        return None
    if kind is None:  # Gemini's parts name their kind by their one key: {"inline_data": {...}}
        kind = next((k for k, v in part.items() if k in MEDIA_KINDS and isinstance(v, dict)), None)
    media = MEDIA_KINDS.get(kind)
    if media is None:
        if isinstance(part.get("text"), str):
            return part["text"]
        if isinstance(part.get("content"), str | list):
            return text_of(part["content"]) or ""
        if isinstance(part.get("refusal"), str):
            return part["refusal"]
    return placeholder(part, media or str(kind or next(iter(part), "part")))


_ERROR_START = re.compile(
    r"^\s*(?:error\b|exception\b|traceback \(most recent call last\)|fatal\b|\{\s*\"error\")",
    re.IGNORECASE,
)
_EXIT_CODE = re.compile(
    r"^\s*(?:<returncode>\s*|exit code:?\s*|exit status:?\s*)(-?\d+)", re.IGNORECASE
)


def looks_like_error(text: str | None) -> bool:
    """A tool output that reports an error by how it begins: "Error: ...", a traceback, a JSON
    error object, or a non-zero exit code ("<returncode>1</returncode>", "Exit code: 2")."""
    if not text:
        return False
    if _ERROR_START.match(text):
        return True
    m = _EXIT_CODE.match(text)
    return m is not None and m.group(1) != "0"


class StepBuilder:
    """Accumulates the steps of one run and links tool calls to their results."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._uses: dict[str, int] = {}  # source id -> how many calls used it
        # source id -> unanswered calls (unique id, step_idx, tool name), and the latest call
        self._open: dict[str, list[tuple[str, int, str | None]]] = {}
        self._last: dict[str, tuple[str, int, str | None]] = {}
        self._auto = 0

    def __len__(self) -> int:
        return len(self.steps)

    def message(self, role: str, content: str | None, message_idx: int) -> int:
        self.steps.append((role, "message", content, None, None, None, None, False, message_idx))
        return len(self.steps) - 1

    def call(
        self,
        name: str | None,
        args: Any,
        call_id: str | None,
        message_idx: int,
        content: str | None = None,
    ) -> str:
        """Add a tool call; returns its id, made unique within the run."""
        if not call_id:
            self._auto += 1
            call_id = f"call_{self._auto}"
        n = self._uses.get(call_id, 0) + 1
        self._uses[call_id] = n
        unique = call_id if n == 1 else f"{call_id}#{n}"
        idx = len(self.steps)
        self.steps.append(
            ("assistant", "tool_call", content, name, canonical_args(args), unique, None, False,
             message_idx)
        )  # fmt: skip
        entry = (unique, idx, name)
        self._open.setdefault(call_id, []).append(entry)
        self._last[call_id] = entry
        return call_id

    def result(
        self,
        call_id: str | None,
        content: str | None,
        message_idx: int,
        *,
        is_error: bool | None = None,
        name: str | None = None,
    ) -> int:
        """Add a tool result, linked to the latest unanswered call with `call_id`.

        Without an id, it answers the latest unanswered call of any id. `is_error=None` means
        the source has no flag: the text decides (``looks_like_error``).
        """
        entry = None
        if call_id is None:
            pending = [(stack[-1][1], key) for key, stack in self._open.items() if stack]
            if pending:
                entry = self._open[max(pending)[1]].pop()
        elif self._open.get(call_id):
            entry = self._open[call_id].pop()
        elif call_id in self._last:  # a second result for an answered call
            entry = self._last[call_id]
        unique, call_idx, call_name = entry if entry else (call_id, None, None)
        flagged = looks_like_error(content) if is_error is None else bool(is_error)
        self.steps.append(
            ("tool", "tool_result", content, name or call_name, None, unique, call_idx, flagged,
             message_idx)
        )  # fmt: skip
        return len(self.steps) - 1
