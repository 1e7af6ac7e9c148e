"""A scripted model for the consolidation tests and benchmark: valid answers read off the prompt.

`responder(body)` answers the three consolidation requests the way a careful model would, from
what the prompt shows: a summary takes the first lesson's words and cites every lesson shown; a
merge node joins inputs whose titles are the same once normalised and keeps the rest; a
sequential edit joins a lesson to the statement (or earlier lesson of its batch) with the same
title and keeps the others. Contradicting inputs of a merge node (the same words, opposite
advice or another setting value) are resolved by their evidence: the side seen in more runs is
kept and the other dropped, a tie becomes one statement naming both. Tests wrap it to inject the
faults they are about.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline.consolidate.conflicts import position, section_key, stem

_ITEM = re.compile(r"^\[([SL]\d+)\] (.*)$", re.M)
_TITLE = re.compile(r"^  title: (.*)$", re.M)
_RUNS = re.compile(r"(\d+) (?:failed|successful|other) runs?")


def kind(body: dict) -> str:
    """summary / merge / sequential, from the request's schema and system prompt."""
    fmt = body.get("response_format", {}).get("json_schema", {}).get("name")
    if fmt == "SummaryAnswer":
        return "summary"
    if "one batch of new lessons at a time" in " ".join(body["messages"][0]["content"].split()):
        return "sequential"
    return "merge"


def user_text(body: dict) -> str:
    return body["messages"][1]["content"]


def is_reask(body: dict) -> bool:
    return len(body["messages"]) > 2


def summary_lessons(body: dict) -> list[tuple[str, str, str]]:
    """(id, title, content) of the lessons a summary request shows."""
    out = []
    for m in _ITEM.finditer(user_text(body)):
        title, _, content = m.group(2).partition(" / ")
        out.append((m.group(1), title, content))
    return out


def entries(body: dict) -> list[dict]:
    """The S and L entries of a merge or sequential request: id, section and title."""
    text = user_text(body)
    starts = list(_ITEM.finditer(text))
    out = []
    for k, m in enumerate(starts):
        block = text[m.start() : starts[k + 1].start() if k + 1 < len(starts) else len(text)]
        title = _TITLE.search(block)
        section = m.group(2).split(" | ")[0].removeprefix("section: ")
        runs = sum(int(n) for n in _RUNS.findall(m.group(2))) or 1
        out.append(
            {"id": m.group(1), "section": section, "runs": runs,
             "title": title.group(1) if title else ""}
        )  # fmt: skip
    return out


def norm(title: str) -> str:
    return re.sub(r"[^a-z0-9=]+", " ", title.lower()).strip()


def statement(ids: list[str], section: str, title: str, **over: Any) -> dict:
    return {
        "ids": ids,
        "section": section,
        "title": title,
        "detail": f"Seen across the runs behind {', '.join(ids)}.",
        "edit": "append",
        "anchor": None,
        "removes": None,
    } | over


def answer_summary(body: dict) -> dict:
    lessons = summary_lessons(body)
    _, title, content = lessons[0]
    return {
        "title": title,
        "content": content or title,
        "cited_lesson_ids": [i for i, _, _ in lessons],
    }


def answer_merge(body: dict) -> dict:
    topics: dict[tuple[str, str], dict[tuple, list[dict]]] = {}
    for e in entries(body):
        key = (section_key(e["section"]), stem(e["title"]))
        topics.setdefault(key, {}).setdefault(position(e["title"]), []).append(e)
    out: dict[str, list] = {"keep": [], "statements": [], "conflicts": [], "dropped": []}
    for sides in topics.values():
        ranked = sorted(sides.values(), key=lambda es: -sum(e["runs"] for e in es))
        best = sum(e["runs"] for e in ranked[0])
        winners = [es for es in ranked if sum(e["runs"] for e in es) == best]
        if len(sides) > 1:
            out["conflicts"].append(
                {"ids": [e["id"] for es in ranked for e in es],
                 "resolution": f"kept the side seen in {best} runs"}
            )  # fmt: skip
            for es in ranked[len(winners) :]:
                out["dropped"] += [
                    {"id": e["id"], "reason": "contradicted by more runs"} for e in es
                ]
        same = [e for es in winners for e in es]
        if len(same) == 1:
            out["keep"].append(same[0]["id"])
            continue
        title = same[0]["title"]
        if len(winners) > 1:
            title = "Check which case applies: " + " or ".join(es[0]["title"] for es in winners)
        out["statements"].append(statement([e["id"] for e in same], same[0]["section"], title))
    return out


def answer_sequential(body: dict) -> dict:
    known: dict[str, dict] = {}  # normalised title -> statement being built
    keep, order = [], []
    for e in entries(body):
        key = norm(e["title"])
        if e["id"].startswith("S"):
            known.setdefault(key, {"ids": [e["id"]], "entry": e, "new": False})
            continue
        if key in known:
            known[key]["ids"].append(e["id"])
            if known[key] not in order:
                order.append(known[key])
        else:
            known[key] = {"ids": [e["id"]], "entry": e, "new": True}
            keep.append(e["id"])
    statements = []
    for s in order:
        ids = s["ids"]
        if s["new"]:  # a lesson of this batch repeated later in it: one statement for both
            keep.remove(ids[0])
        statements.append(statement(ids, s["entry"]["section"], s["entry"]["title"]))
    return {"keep": keep, "statements": statements, "conflicts": [], "dropped": []}


def answer(body: dict) -> dict:
    """The scripted answer to a request, as a dict."""
    make = {"summary": answer_summary, "merge": answer_merge, "sequential": answer_sequential}
    return make[kind(body)](body)


def reply(value: dict) -> dict:
    """An answer as the loopback server's reply (its JSON as the content: a summary's own
    `content` key would otherwise be read as the reply's content)."""
    return {"content": json.dumps(value)}


def responder(body: dict) -> dict:
    return reply(answer(body))
