"""Claude Code session transcripts (``~/.claude/projects/<project>/<session>.jsonl``).

One JSON entry per line; ``type`` ``user`` / ``assistant`` entries carry ``message`` with
``role`` and ``content``: a string, or blocks ``text``, ``tool_use {id, name, input}`` and (in
user entries) ``tool_result {tool_use_id, content, is_error}``; other blocks (a pasted image, a
document) are kept in the text as a placeholder (``[image: image/png, 24 KB]``). The assistant's reply to one
request is often split over several entries sharing ``message.id``. Other entry types
(``summary``, ``file-history-snapshot``, ``queue-operation``, ``system``), injected meta
messages (``isMeta``) and sub-agent entries (``isSidechain``) are not steps; thinking blocks
are skipped.

One run per ``sessionId`` in the file. Model: the assistant's ``message.model``; the outcome is
not in a transcript (unknown unless ``--labels`` gives it). A line that is not JSON is skipped
and reported; the rest of the session is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Run, StepBuilder, part_text, text_of

NAME = "claude-code"
AGENT = "claude-code"
ENTRY_TYPES = {"user", "assistant", "summary", "file-history-snapshot", "queue-operation", "system"}


def sniff(sample: list[Any], raw: RawFile) -> bool:
    return (
        raw.is_jsonl
        and bool(sample)
        and all(isinstance(r, dict) and r.get("type") in ENTRY_TYPES for r in sample)
        and any("sessionId" in r or "message" in r or "leafUuid" in r for r in sample)
    )


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    sessions: dict[str, list[tuple[int, dict]]] = {}
    summaries: dict[str, str] = {}
    for line_no, entry in raw.jsonl():
        if isinstance(entry, BadRecord):
            yield entry
            continue
        if not isinstance(entry, dict):
            yield BadRecord(f"line {line_no}", "expected a JSON object")
            continue
        kind = entry.get("type")
        if kind == "summary" and isinstance(entry.get("summary"), str):
            summaries[entry.get("leafUuid", "")] = entry["summary"]
        if kind not in ("user", "assistant") or entry.get("isMeta") or entry.get("isSidechain"):
            continue
        if not isinstance(entry.get("message"), dict):
            yield BadRecord(f"line {line_no}", f"{kind} entry without a message object")
            continue
        sessions.setdefault(str(entry.get("sessionId") or raw.path.stem), []).append(
            (line_no, entry)
        )
    if not sessions:
        yield BadRecord("document", "no user or assistant entries: nothing to read")
    for session, entries in sessions.items():
        record = f"session {session} (line {entries[0][0]})"
        try:
            yield _run(session, entries, summaries, record, ctx)
        except ValueError as exc:
            yield BadRecord(record, str(exc))


def _run(session: str, entries: list[tuple[int, dict]], summaries: dict, record: str, ctx) -> Run:
    b = StepBuilder()
    msg = -1
    last_id = None
    model = None
    uuids = set()
    for line_no, entry in entries:
        message = entry["message"]
        uuids.add(entry.get("uuid"))
        mid = message.get("id") if entry["type"] == "assistant" else None
        if mid is None or mid != last_id:
            msg += 1
        last_id = mid
        if entry["type"] == "assistant":
            model = model or message.get("model")
        content = message.get("content")
        if isinstance(content, str):
            b.message("assistant" if entry["type"] == "assistant" else "user", content, msg)
            continue
        if not isinstance(content, list):
            raise ValueError(f"line {line_no}: message content is neither text nor blocks")
        text = []
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                text.append(block.get("text") or "")
            elif kind == "tool_use":
                b.call(block.get("name"), block.get("input"), block.get("id"), msg,
                       content="\n\n".join(text) or None)  # fmt: skip
                text = []
            elif kind == "tool_result":
                # The transcript flags every failed call; no flag means it worked.
                b.result(block.get("tool_use_id"), text_of(block.get("content")) or "", msg,
                         is_error=bool(block.get("is_error")))  # fmt: skip
            elif (placeholder := part_text(block)) is not None:  # images, documents, ...
                text.append(placeholder)
        if text:
            b.message(
                "assistant" if entry["type"] == "assistant" else "user", "\n\n".join(text), msg
            )
    first = entries[0][1]
    meta = {k: first[k] for k in ("cwd", "gitBranch", "version") if first.get(k)}
    titles = [s for leaf, s in summaries.items() if leaf in uuids]
    if titles:
        meta["summary"] = titles[-1]
    return Run(
        record=record,
        steps=b.steps,
        native_id=session,
        task_id=None,
        model=model or ctx.model,
        agent=AGENT,
        outcome=None,
        reward=None,
        meta=meta,
    )
