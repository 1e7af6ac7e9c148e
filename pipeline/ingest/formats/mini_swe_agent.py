"""mini-swe-agent ``*.traj.json``: ``{"info": {...}, "messages": [...], "trajectory_format": ...}``.

Two message shapes exist. Format ``mini-swe-agent-1`` (v1.x) is plain text: the assistant writes
a THOUGHT and one ```` ```bash ```` block (read as a ``bash`` tool call), the next user message
starting ``<returncode>`` is its output (read as the tool result; a non-zero return code is an
error). Format ``mini-swe-agent-1.1`` (v2.x) uses chat tool calls with role ``tool`` results
whose text carries the same ``<returncode>``; the closing role ``exit`` message repeats the
submission and is skipped.

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
_BASH = re.compile(r"```(?:bash|sh|shell)?[ \t]*\n(.*?)\n?```", re.S)
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
                steps = text_steps(messages)
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


def text_steps(messages: list) -> list:
    """v1 text messages: a bash block in an assistant message is a call, the next
    ``<returncode>`` user message its result."""
    b = StepBuilder()
    pending = None
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise MessageError(i, f"expected an object, got {json_type(msg)}")
        role, text = msg.get("role"), text_of(msg.get("content")) or ""
        if role == "exit":
            continue
        if role == "assistant":
            blocks = _BASH.findall(text)
            if blocks:
                pending = b.call("bash", {"command": blocks[-1]}, None, i, content=text)
            else:
                b.message("assistant", text, i)
        elif role == "user" and pending is not None and _RETURNCODE.search(text):
            b.result(pending, text, i, is_error=returncode_error(msg, text))
            pending = None
        elif role in ("system", "user"):
            b.message(role, text, i)
        else:
            raise MessageError(i, f"unknown role {role!r}")
    return b.steps
