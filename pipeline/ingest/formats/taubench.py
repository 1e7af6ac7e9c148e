"""tau-bench historical trajectories: a JSON list of {task_id, trial, reward, info, traj}.

``traj`` is a list of OpenAI chat messages. The reward is the source's outcome (1.0 = success).
Everything in ``info`` the agent never saw (the task's gold actions and hidden user instruction,
the reward breakdown) goes to ``meta.grader``. The model is not in the file: tau-bench names its
historical files ``<model>-<domain>.json`` (``gpt-4o-airline.json``), so it is read from there,
else from ``--model``, else left null.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipeline.ingest.formats.chat import MessageError, chat_steps
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Run, as_reward, json_type, outcome_from_reward

NAME = "tau-bench"
AGENT = "tau-bench"
DOMAINS = ("airline", "retail", "telecom")
_FILE_NAME = re.compile(rf"^(?P<model>.+?)[-_](?P<domain>{'|'.join(DOMAINS)})$")


def sniff(sample: list[Any], raw: RawFile) -> bool:
    first = sample[0] if sample else None
    return (
        not raw.is_jsonl
        and isinstance(first, dict)
        and isinstance(first.get("traj"), list)
        and ("task_id" in first or "reward" in first)
    )


def model_and_domain(raw: RawFile) -> tuple[str | None, str | None]:
    m = _FILE_NAME.match(raw.path.stem)
    return (m.group("model"), m.group("domain")) if m else (None, None)


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    model, domain = model_and_domain(raw)
    model = model or ctx.model
    for index, rec in raw.json_records():
        record = "document" if index is None else f"[{index}]"
        if isinstance(rec, BadRecord):
            yield rec
            continue
        if not isinstance(rec, dict):
            yield BadRecord(
                record, f"expected an object with traj and reward, got {json_type(rec)}"
            )
            continue
        traj = rec.get("traj")
        if not isinstance(traj, list) or not traj:
            yield BadRecord(record, "record without messages: 'traj' is missing or empty")
            continue
        try:
            steps = chat_steps(traj).steps
            reward = as_reward(rec.get("reward"))
        except (MessageError, ValueError) as exc:
            yield BadRecord(record, str(exc))
            continue
        info = rec.get("info") if isinstance(rec.get("info"), dict) else {}
        task_id = rec.get("task_id")
        trial = rec.get("trial")
        meta: dict[str, Any] = {"trial": trial, "domain": domain}
        if "user_cost" in info:
            meta["user_cost"] = info["user_cost"]
        if "source" in info:
            meta["ended_by"] = info["source"]  # who ended the conversation (user / a tool)
        grader = {k: info[k] for k in ("task", "reward_info") if info.get(k) is not None}
        rest = {
            k: v for k, v in info.items() if k not in ("task", "reward_info", "user_cost", "source")
        }
        if rest:
            meta["info"] = rest
        if grader:
            meta["grader"] = grader
        yield Run(
            record=record,
            steps=steps,
            native_id=f"{task_id}-{trial}" if trial is not None else _str(task_id),
            task_id=_str(task_id),
            model=model,
            agent=AGENT,
            outcome=outcome_from_reward(reward),
            reward=reward,
            meta=meta,
        )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
