"""Offline conflict detection and resolution between consolidated statements.

Two statements of one section are about the same thing when their titles have the same *stem*:
the words in order, lower-cased, without negations ("not", "never", "avoid", "don't", ...),
polarity words ("always", "must", "do", ...), articles, and the values of `name=value` settings.
Statements with one stem then take *positions*: their polarity and their settings.

- one position: duplicates, merged into one statement (every cluster carried);
- several positions (do X / do not X; cabin=economy / cabin=business): a conflict. The position
  backed by more distinct trajectories wins and the others are dropped with the figures; when the
  best positions tie, they are kept together as one conditional statement, and the conflict says so.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

NEGATIONS = {
    "not",
    "never",
    "avoid",
    "avoids",
    "avoiding",
    "don't",
    "dont",
    "doesn't",
    "cannot",
    "can't",
    "shouldn't",
    "mustn't",
    "won't",
}
FILLER = {"always", "must", "should", "do", "does", "the", "a", "an", "please"}
_LEAD = re.compile(r"^\s*(when|if|unless|in cases where)\b[^,]*,")
_TAIL = re.compile(r"\s+(when|if|unless|in cases where)\s.*$")
_TOKEN = re.compile(r"[a-z_][a-z0-9_]*\s*=\s*['\"]?[a-z0-9_:/.\-]*[a-z0-9_]|[\w']+")


@dataclass
class Item:
    """One statement on its way to the skill, with the clusters and runs behind it."""

    item_id: str
    section: str | None
    kind: str
    op: str  # add / revise / remove (the members' most frequent op)
    title: str
    detail: str
    cluster_ids: tuple[str, ...]
    runs: np.ndarray  # sorted distinct trajectory indices (see render.RunIndex)
    n_lessons: int
    tool_name: str | None = None
    lesson_ids: tuple[str, ...] = ()  # lessons the statement draws on (cited)
    note: str | None = None  # how it was formed when not from one cluster
    edit: str | None = None  # a model's edit: insert_after / insert_before / replace at `anchor`
    anchor: str | None = None  # exact base text the edit is placed at
    removes: str | None = None  # a base section or file the statement supersedes (deleted)
    children: list[Item] = field(default_factory=list, repr=False)

    @property
    def support(self) -> int:
        return int(self.runs.size)


def tokens(title: str) -> list[str]:
    return [
        re.sub(r"\s+", "", t).replace('"', "").replace("'", "") if "=" in t else t
        for t in _TOKEN.findall(title.lower())
    ]


def split(title: str) -> tuple[str, str, str]:
    """(leading condition, main clause, trailing condition) of a lower-cased title."""
    low = title.lower()
    lead = _LEAD.match(low)
    if lead:
        return low[: lead.end()], low[lead.end() :], ""
    tail = _TAIL.search(low)
    if tail:
        return "", low[: tail.start()], low[tail.start() :]
    return "", low, ""


def negated(title: str) -> bool:
    """The main clause advises against something (a negation in a condition does not count)."""
    return any(t in NEGATIONS for t in tokens(split(title)[1]))


def position(title: str) -> tuple[bool, tuple[str, ...]]:
    """(negated, sorted name=value settings) of a title."""
    return (negated(title), tuple(sorted({t for t in tokens(title) if "=" in t})))


def stem(title: str) -> str:
    """The title's words without the main clause's negations, fillers, or setting values."""
    pre, main, post = split(title)
    words = tokens(pre) + [t for t in tokens(main) if t not in NEGATIONS] + tokens(post)
    return " ".join(t.split("=", 1)[0] + "=" if "=" in t else t for t in words if t not in FILLER)


def section_key(section: str | None) -> str:
    return re.sub(r"\s+", " ", section or "").strip().lower()


@dataclass
class Resolution:
    kept: list[list[Item]]  # groups of items that become one statement each
    dropped: dict[str, str]  # cluster_id -> reason
    conflicts: list[dict]
    conditional: list[bool]  # per kept group: a tie kept as one conditional statement


def _describe(items: list[Item]) -> str:
    return items[0].title


def resolve(items: list[Item]) -> Resolution:
    """Group duplicates, find conflicts and resolve them by evidence."""
    by_stem: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for it in items:
        by_stem[(section_key(it.section), stem(it.title))].append(it)
    kept, cond, dropped, conflicts = [], [], {}, []
    for (_, st), group in sorted(by_stem.items()):
        positions: dict[tuple, list[Item]] = defaultdict(list)
        for it in group:
            positions[position(it.title)].append(it)
        if len(positions) == 1:
            kept.append(group)
            cond.append(False)
            continue
        scored = sorted(
            (
                (np.unique(np.concatenate([i.runs for i in its])).size, pos, its)
                for pos, its in positions.items()
            ),
            key=lambda x: (-x[0], x[1]),
        )
        best = scored[0][0]
        winners = [s for s in scored if s[0] == best]
        losers = [s for s in scored if s[0] < best]
        kind = "polarity" if len({s[1][0] for s in scored}) > 1 else "value"
        record = {
            "kind": kind,
            "stem": st,
            "positions": [
                {
                    "title": _describe(its),
                    "runs": n,
                    "cluster_ids": sorted(c for i in its for c in i.cluster_ids),
                }
                for n, _, its in scored
            ],
        }
        if len(winners) == 1:
            kept.append(winners[0][2])
            cond.append(False)
            record["resolution"] = f"kept {_describe(winners[0][2])!r} ({best} runs)"
        else:
            kept.append([i for s in winners for i in s[2]])
            cond.append(True)
            record["resolution"] = (
                f"tie at {best} runs: kept {len(winners)} positions as one conditional statement"
            )
        for n, _, its in losers:
            reason = (
                f"conflict ({kind}): contradicted by {_describe(winners[0][2])!r} with more "
                f"support ({best} vs {n} distinct runs)"
            )
            for it in its:
                for c in it.cluster_ids:
                    dropped[c] = reason
        conflicts.append(record)
    return Resolution(kept, dropped, conflicts, cond)
