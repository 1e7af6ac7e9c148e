"""Any other JSON / JSONL format, described by a mapping file (TOML or YAML): no code needed.

Every value is a dotted path into a record (``result.score``, ``turns.0.text``). Example::

    records = "data.runs"         # JSON only: where the list of runs is (default: the document
                                  # itself when it is a list, else the document is one run)
    success_threshold = 1.0       # a reward at or above this is a success (default 1.0)

    [run]
    messages = "turns"            # required: the list of messages
    id = "session_id"             # the run's own id
    task = "task.name"
    model = "meta.model"
    agent = "agent"
    outcome = "result.status"     # mapped through [outcomes], then success/failure spellings
    reward = "result.score"
    grader = ["gold_answer"]      # copied to meta.grader (what the agent never saw)
    meta = ["tags"]               # copied to meta

    [message]
    role = "speaker"              # required
    content = "text"              # required
    tool_calls = "calls"          # a list of calls inside an assistant message, read with [tool_call]
    tool_name = "tool.name"       # or: the message itself is a call / a result of this tool
    tool_args = "tool.input"
    tool_call_id = "tool.id"
    is_error = "tool.failed"

    [tool_call]
    name = "function.name"
    args = "function.arguments"
    id = "id"

    [roles]                       # source role -> system / user / assistant / tool
    human = "user"
    bot = "assistant"
    observation = "tool"

    [outcomes]                    # source outcome value -> success / failure / unknown
    ok = "success"

A message whose (mapped) role is ``tool`` is a tool result; an assistant message with tool calls
(or a tool name) is one step per call; any other message is one step.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.ingest.rawfile import FileError, RawFile
from pipeline.ingest.record import (
    SUCCESS_REWARD,
    BadRecord,
    Run,
    StepBuilder,
    as_reward,
    json_type,
    normalize_outcome,
    outcome_from_reward,
    text_of,
)

NAME = "mapping"
SECTIONS = {
    "run": {"messages", "id", "task", "model", "agent", "outcome", "reward", "grader", "meta"},
    "message": {
        "role",
        "content",
        "tool_calls",
        "tool_name",
        "tool_args",
        "tool_call_id",
        "is_error",
    },
    "tool_call": {"name", "args", "id"},
    "roles": None,  # free keys
    "outcomes": None,
}
TOP = {"records", "success_threshold", "name", "description", *SECTIONS}
ROLES = {"system", "user", "assistant", "tool"}
_MISSING = object()


@dataclass(frozen=True)
class MappingSpec:
    file: str
    sha256: str
    run: dict[str, Any]
    message: dict[str, str]
    tool_call: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    records: str | None = None
    success_threshold: float = SUCCESS_REWARD


def load_spec(path: str | Path) -> MappingSpec:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"mapping file {path} does not exist")
    data = path.read_bytes()
    try:
        if path.suffix.lower() == ".toml":
            doc = tomllib.loads(data.decode("utf-8"))
        else:
            doc = yaml.safe_load(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"mapping file {path} cannot be parsed: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"mapping file {path}: expected a table of settings")
    problems = [f"unknown key {k!r}" for k in doc if k not in TOP]
    for section, allowed in SECTIONS.items():
        value = doc.get(section, {})
        if not isinstance(value, dict):
            problems.append(f"[{section}] must be a table")
        elif allowed is not None:
            problems += [f"unknown key {section}.{k}" for k in value if k not in allowed]
    run, message = doc.get("run", {}), doc.get("message", {})
    for section, key in (("run", "messages"), ("message", "role"), ("message", "content")):
        if not doc.get(section, {}).get(key):
            problems.append(f"{section}.{key} is required")
    bad_roles = {v for v in doc.get("roles", {}).values() if v not in ROLES}
    if bad_roles:
        problems.append(f"roles must map to {sorted(ROLES)}, got {sorted(bad_roles)}")
    if problems:
        raise ValueError(f"mapping file {path}: " + "; ".join(problems))
    for key in ("grader", "meta"):
        if isinstance(run.get(key), str):
            run[key] = [run[key]]
    return MappingSpec(
        file=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        run=run,
        message=message,
        tool_call=doc.get("tool_call", {}),
        roles={str(k): v for k, v in doc.get("roles", {}).items()},
        outcomes={str(k).lower(): v for k, v in doc.get("outcomes", {}).items()},
        records=doc.get("records"),
        success_threshold=float(doc.get("success_threshold", SUCCESS_REWARD)),
    )


def sniff(sample, raw: RawFile) -> bool:
    return False  # a mapping is always named, never guessed


def get(value: Any, path: str | None, default: Any = None) -> Any:
    """The value at a dotted path (list indexes are numbers); `default` if any step is missing."""
    if not path:
        return default
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return default
    return value


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    spec: MappingSpec = ctx.mapping
    if raw.is_jsonl:
        records = ((f"line {n}", value) for n, value in raw.jsonl())
    elif spec.records:
        items = get(raw.doc, spec.records, _MISSING)
        if not isinstance(items, list):
            raise FileError(f"no list of runs at {spec.records!r} (from mapping {spec.file})")
        records = ((f"{spec.records}[{i}]", v) for i, v in enumerate(items))
    else:
        records = (("document" if i is None else f"[{i}]", v) for i, v in raw.json_records())
    for record, rec in records:
        if isinstance(rec, BadRecord):
            yield rec
            continue
        try:
            yield _run(rec, record, spec, ctx)
        except ValueError as exc:
            yield BadRecord(record, str(exc))


def _run(rec: Any, record: str, spec: MappingSpec, ctx) -> Run:
    if not isinstance(rec, dict):
        raise ValueError(f"expected an object, got {json_type(rec)}")
    messages = get(rec, spec.run["messages"])
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"record without messages: nothing at {spec.run['messages']!r}")
    steps = _steps(messages, spec)
    reward = as_reward(get(rec, spec.run.get("reward")))
    raw_outcome = get(rec, spec.run.get("outcome"))
    if raw_outcome is not None and str(raw_outcome).lower() in spec.outcomes:
        raw_outcome = spec.outcomes[str(raw_outcome).lower()]
    outcome = normalize_outcome(raw_outcome) or outcome_from_reward(reward, spec.success_threshold)
    meta: dict[str, Any] = {
        p: v for p in spec.run.get("meta", []) if (v := get(rec, p)) is not None
    }
    grader = {p: v for p in spec.run.get("grader", []) if (v := get(rec, p)) is not None}
    if grader:
        meta["grader"] = grader
    return Run(
        record=record,
        steps=steps,
        native_id=_str(get(rec, spec.run.get("id"))),
        task_id=_str(get(rec, spec.run.get("task"))),
        model=_str(get(rec, spec.run.get("model"))) or ctx.model,
        agent=_str(get(rec, spec.run.get("agent"))),
        outcome=outcome,
        reward=reward,
        meta=meta,
    )


def _steps(messages: list, spec: MappingSpec) -> list:
    m, tc = spec.message, spec.tool_call
    b = StepBuilder()
    for i, msg in enumerate(messages):
        raw_role = get(msg, m["role"])
        role = spec.roles.get(str(raw_role), raw_role)
        if role not in ROLES:
            raise ValueError(
                f"message {i}: role {raw_role!r} is not one of {sorted(ROLES)}; map it in [roles]"
            )
        content = text_of(get(msg, m["content"]))
        if role == "tool":
            flag = get(msg, m.get("is_error"))
            b.result(_str(get(msg, m.get("tool_call_id"))), content, i,
                     is_error=None if flag is None else bool(flag),
                     name=_str(get(msg, m.get("tool_name"))))  # fmt: skip
            continue
        calls = get(msg, m.get("tool_calls")) if role == "assistant" else None
        if isinstance(calls, list) and calls:
            for j, call in enumerate(calls):
                b.call(_str(get(call, tc.get("name", "name"))), get(call, tc.get("args", "arguments")),
                       _str(get(call, tc.get("id", "id"))), i, content=content if j == 0 else None)  # fmt: skip
        elif role == "assistant" and get(msg, m.get("tool_name")) is not None:
            b.call(_str(get(msg, m["tool_name"])), get(msg, m.get("tool_args")),
                   _str(get(msg, m.get("tool_call_id"))), i, content=content)  # fmt: skip
        else:
            b.message(role, content if content is not None else "", i)
    return b.steps


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
