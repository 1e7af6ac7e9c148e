"""mini-swe-agent ``*.traj.json``: ``{"info": {...}, "messages": [...], "trajectory_format": ...}``.

Two message shapes exist. Format ``mini-swe-agent-1`` (v1.x) is plain text: mini-swe-agent runs
an assistant reply only when its action regex (```` ```bash ```` blocks by default) finds exactly
ONE block, so such a reply is a ``bash`` tool call and the next user message its output (the
observation, a timeout notice or the submission; a non-zero ``<returncode>`` or a timeout is an
error). A reply with no block or several ran nothing: it stays a message, and the format error
that follows is a user message. The regex is the run's own where its config records one
(``info.config.agent`` or ``.model`` ``action_regex``), and the parsed ``extra.actions`` of a
v2 text-based reply are taken as they are. Format ``mini-swe-agent-1.1`` (v2.x) uses chat tool
calls with role ``tool`` results whose text carries the same ``<returncode>``; the closing role
``exit`` message repeats the submission and is skipped.

Task id: ``instance_id`` or the file name; model: ``info.config.model.model_name``; outcome:
``info.resolved`` (or ``resolved`` at the top) where present, else unknown (``--labels`` can
give it, e.g. a SWE-bench report). Exit status, submission and cost go to ``meta``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipeline.ingest.formats.chat import MessageError, chat_steps
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import (
    BadRecord,
    Run,
    StepBuilder,
    json_type,
    normalize_outcome,
    text_of,
)

NAME = "mini-swe-agent"
AGENT = "mini-swe-agent"
# mini-swe-agent's own defaults: v1 (and its SWE-bench configs) reads ```bash blocks, v2's
# text-based models ```mswea_bash_command blocks. Prose between two fences is not a block.
V1_ACTION = re.compile(r"```bash\s*\n(.*?)\n```", re.S)
V2_ACTION = re.compile(r"```mswea_bash_command\s*\n(.*?)\n```", re.S)
_TIMEOUT = re.compile(r"^The last command <command>.*?</command> timed out", re.S)
_RETURNCODE = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")


def sniff(sample: list[Any], raw: RawFile) -> bool:
    doc = sample[0] if len(sample) == 1 else None
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("messages"), list)
        and (str(doc.get("trajectory_format", "")).startswith("mini-swe-agent")
             or (isinstance(doc.get("info"), dict) and "exit_status" in doc["info"]))
    )  # fmt: skip


def returncode_error(msg: dict, text: str | None) -> bool | None:
    m = _RETURNCODE.search(text or "")
    return None if m is None else m.group(1) != "0"


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    for _, doc in raw.json_records():
        if isinstance(doc, BadRecord):
            yield doc
            continue
        messages = doc.get("messages") if isinstance(doc, dict) else None
        if not isinstance(messages, list) or not messages:
            yield BadRecord("document", "record without messages: 'messages' is missing or empty")
            continue
        try:
            if any(isinstance(m, dict) and m.get("tool_calls") for m in messages):
                steps = chat_steps(
                    messages, skip_roles=frozenset({"exit"}), is_error=returncode_error
                ).steps
            else:
                steps = text_steps(messages, action_pattern(doc))
            info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
            outcome = normalize_outcome(info.get("resolved", doc.get("resolved")))
        except (MessageError, ValueError) as exc:
            yield BadRecord("document", str(exc))
            continue
        config = info.get("config") if isinstance(info.get("config"), dict) else {}
        model_cfg = config.get("model") if isinstance(config.get("model"), dict) else {}
        meta = {
            k: info[k]
            for k in ("exit_status", "submission", "model_stats", "mini_version")
            if info.get(k) is not None
        }
        if doc.get("trajectory_format"):
            meta["trajectory_format"] = doc["trajectory_format"]
        task = doc.get("instance_id") or raw.path.name.removesuffix(".json").removesuffix(".traj")
        yield Run(
            record="document",
            steps=steps,
            native_id=str(task),
            task_id=str(task),
            model=model_cfg.get("model_name") or ctx.model,
            agent=AGENT,
            outcome=outcome,
            reward=None,
            meta=meta,
        )


def action_pattern(doc: dict) -> re.Pattern:
    """The regex the run parsed its actions with: its config's where recorded, else its version's
    default."""
    info = _object(doc.get("info"))
    config = _object(info.get("config"))
    for section in ("agent", "model"):
        source = _object(config.get(section)).get("action_regex")
        if not isinstance(source, str) or len(source) > 500:
            continue
        try:
            pattern = re.compile(source, re.S)
        except re.error:
            continue
        if pattern.groups == 1:  # mini-swe-agent keeps findall's one group: the command
            return pattern
    return V2_ACTION if doc.get("trajectory_format") == "mini-swe-agent-1.1" else V1_ACTION


def actions_of(msg: dict, text: str, pattern: re.Pattern) -> list[str]:
    """The commands mini-swe-agent ran for one assistant reply: exactly one block, else none."""
    extra = msg.get("extra")
    if isinstance(extra, dict) and isinstance(extra.get("actions"), list):
        return [a["command"] for a in extra["actions"]
                if isinstance(a, dict) and isinstance(a.get("command"), str)]  # fmt: skip
    blocks = pattern.findall(text)
    return [blocks[0].strip()] if len(blocks) == 1 else []


def output_error(msg: dict, text: str) -> bool | None:
    if _TIMEOUT.match(text):
        return True
    return returncode_error(msg, text)


def text_steps(messages: list, pattern: re.Pattern = V1_ACTION) -> list:
    """Text messages: a reply whose action ran is a call per action, the user messages that
    follow are their outputs, in order."""
    b = StepBuilder()
    pending: list[str] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise MessageError(i, f"expected an object, got {json_type(msg)}")
        role, text = msg.get("role"), text_of(msg.get("content")) or ""
        if role == "exit":
            continue
        if role == "assistant":
            pending = []
            for j, command in enumerate(actions_of(msg, text, pattern)):
                content = text if j == 0 else None
                pending.append(b.call("bash", {"command": command}, None, i, content=content))
            if not pending:
                b.message("assistant", text, i)
        elif role == "user" and pending:
            b.result(pending.pop(0), text, i, is_error=output_error(msg, text))
        elif role in ("system", "user"):
            b.message(role, text, i)
        else:
            raise MessageError(i, f"unknown role {role!r}")
    return b.steps


def _object(value: Any) -> dict:
    return value if isinstance(value, dict) else {}
