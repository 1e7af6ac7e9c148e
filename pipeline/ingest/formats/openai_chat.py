"""OpenAI chat JSONL: one run per line, ``{"messages": [...], ...}`` in the chat-completions
shape (assistant ``tool_calls``, role ``tool`` results with ``tool_call_id``).

Optional run fields: ``id`` (also ``trajectory_id``, ``run_id``, ``conversation_id``,
``session_id``), ``task_id`` (or ``task``, ``instance_id``), ``model``, ``agent``, ``reward``
(or ``score``) and ``outcome`` (or ``success``, ``resolved``, ``passed``, ``correct``). Ground
truth fields (``grader``, ``gold``, ``expected``, ``reference``, ``ground_truth``, ``answer``,
``correct_answer``, ``reward_info``) go to ``meta.grader``; other fields go to ``meta``. A JSON
file holding a list of such objects, or one such object, is read the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.ingest.formats.chat import MessageError, chat_steps
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import (
    BadRecord,
    Run,
    as_reward,
    json_type,
    normalize_outcome,
    outcome_from_reward,
)

NAME = "openai-chat"
ID_KEYS = ("id", "trajectory_id", "run_id", "conversation_id", "session_id")
TASK_KEYS = ("task_id", "task", "instance_id")
REWARD_KEYS = ("reward", "score")
OUTCOME_KEYS = ("outcome", "success", "resolved", "passed", "correct")
GRADER_KEYS = (
    "grader", "gold", "expected", "expected_output", "reference", "ground_truth", "answer",
    "correct_answer", "reward_info",
)  # fmt: skip
_USED = {"messages", "model", "agent", *ID_KEYS, *TASK_KEYS, *REWARD_KEYS, *OUTCOME_KEYS}


def sniff(sample: list[Any], raw: RawFile) -> bool:
    # At least half the sampled records hold messages: the others are reported as bad records
    # when read, so a file with as many broken records as good ones is still read, not ignored.
    hits = sum(isinstance(r, dict) and isinstance(r.get("messages"), list) for r in sample)
    return hits > 0 and 2 * hits >= len(sample)


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    if raw.is_jsonl:
        records = ((f"line {n}", value) for n, value in raw.jsonl())
    else:
        records = (
            ("document" if i is None else f"[{i}]", value) for i, value in raw.json_records()
        )
    for record, value in records:
        if isinstance(value, BadRecord):
            yield value
            continue
        yield from read_record(value, record, ctx)


def read_record(rec: Any, record: str, ctx) -> Iterator[Run | BadRecord]:
    if not isinstance(rec, dict):
        yield BadRecord(record, f"expected an object with messages, got {json_type(rec)}")
        return
    messages = rec.get("messages")
    if not isinstance(messages, list) or not messages:
        yield BadRecord(record, "record without messages: 'messages' is missing or empty")
        return
    try:
        steps = chat_steps(messages).steps
        reward = as_reward(_first(rec, REWARD_KEYS))
        outcome = normalize_outcome(_first(rec, OUTCOME_KEYS))
    except (MessageError, ValueError) as exc:
        yield BadRecord(record, str(exc))
        return
    if outcome is None:
        outcome = outcome_from_reward(reward)
    meta = {k: v for k, v in rec.items() if k not in _USED and k not in GRADER_KEYS}
    if isinstance(meta.get("tools"), list):  # tool schemas are bulky: keep their names
        meta["tools"] = [_tool_name(t) for t in meta["tools"]]
    own = rec.get("grader")  # a grader object is the grader's view itself, not one field of it
    grader = dict(own) if isinstance(own, dict) else {}
    grader |= {k: rec[k] for k in GRADER_KEYS if rec.get(k) is not None and k != "grader"}
    if own is not None and not isinstance(own, dict):
        grader["grader"] = own
    if grader:
        meta["grader"] = grader
    native = _first(rec, ID_KEYS)
    task = _first(rec, TASK_KEYS)
    if isinstance(task, dict | list):  # a task described in full, not named: keep it in meta
        meta["task"], task = task, None
    yield Run(
        record=record,
        steps=steps,
        native_id=None if native is None else str(native),
        task_id=None if task is None else str(task),
        model=_str(rec.get("model")) or ctx.model,
        agent=_str(rec.get("agent")),
        outcome=outcome,
        reward=reward,
        meta=meta,
    )


def _first(rec: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if rec.get(key) is not None:
            return rec[key]
    return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _tool_name(tool: Any) -> Any:
    if isinstance(tool, dict):
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        return fn.get("name", tool)
    return tool
