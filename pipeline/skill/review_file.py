"""`review.md`: a proposal's edits as a file a reviewer marks, and the verdicts read back.

Each open edit is a `## eN · kind · section` entry: the statement (and what it replaces), its
evidence, an earlier decision on it if any, then `verdict:` and `reason:` lines the reviewer
fills in (`accept` or `reject`; `a`, `yes`, `r`, `no` also do). Edits held back by an earlier
rejection are listed at the end with why, and take no verdict. Reads and writes text only.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from pipeline.console import plural
from pipeline.skill.diff import evidence_text

NAME = "review.md"
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_ENTRY = re.compile(r"^##\s+(e\d+)\b")
_VERDICT = re.compile(r"^verdict:[ \t]*(\S*)", re.IGNORECASE)
_REASON = re.compile(r"^reason:[ \t]*(.*)$", re.IGNORECASE)
WORDS = {"accept": "accept", "a": "accept", "yes": "accept", "y": "accept",
         "reject": "reject", "r": "reject", "no": "reject", "n": "reject"}  # fmt: skip


class ReviewFileError(ValueError):
    """A review file holds a verdict that is neither accept nor reject."""


def evidence(e: dict) -> str:
    """An edit's evidence, worded as `diff` words a statement's."""
    if not e["lesson_ids"]:
        return "no lessons (a line of the base skill)"
    return evidence_text(e | {"origin": "added"})


def _bare(text: str) -> str:
    return _LIST_MARK.sub("", text or "")


def describe(e: dict) -> list[str]:
    """The lines that show one edit (the review file and the terminal share them)."""
    lines = []
    if e["kind"] == "changed":
        lines += [f"- was: {_bare(e['old_text'])}", f"+ now: {_bare(e['text'])}"]
    else:
        lines.append(f"{'+' if e['kind'] == 'added' else '-'} {_bare(e['text'])}")
    ev = evidence(e)
    if e["kind"] == "changed" and e["old_n_trajectories"] is not None:
        ev = f"was {plural(e['old_n_trajectories'], 'run')}; now {ev}"
    if e["kind"] == "removed":
        ev = f"rested on {ev}; the new consolidation no longer supports it"
    if e.get("n_new_runs"):
        ev += f"; new runs: {e['n_new_runs']}"
    lines.append(f"evidence: {ev}")
    if e.get("note"):
        lines.append(f"before: {e['note']}")
    return lines


def render(proposal: dict, edits: pl.DataFrame, lake_uri: str) -> str:
    pid = proposal["proposal_id"][:12]
    skill_dir = Path(proposal["path"]) / proposal["skill_name"]
    base = proposal["base_version_id"]
    open_edits = edits.filter(pl.col("held_by").is_null())
    held = edits.filter(pl.col("held_by").is_not_null())
    out = [
        f"# Proposal {pid}: {proposal['skill_name']}",
        "",
        f"Against version {base[:8] if base else '(none: a first skill)'} at {proposal['out']}, "
        f"from consolidation {proposal['run_id']}"
        + (
            f", {plural(proposal['n_new_runs'], 'run')} new since {proposal['since']:%Y-%m-%d %H:%M}"
            if proposal["since"]
            else ""
        )
        + f"; {plural(open_edits.height, 'edit')} to review"
        + (f", {held.height} held back by earlier rejections" if held.height else "")
        + ".",
        "",
        "Mark each edit `verdict: accept` or `verdict: reject` (a reason helps the next "
        "review: rejected statements are not proposed again until their evidence has grown), "
        "then publish what you accepted:",
        "",
        f"    trace2skill review {pid} --lake {lake_uri}",
        "",
        "To check the proposal before it replaces the skill in use (the gate):",
        "",
        f"    trace2skill eval --skill {skill_dir} --incumbent {proposal['out']} --lake {lake_uri} ...",
        "",
    ]
    for e in open_edits.iter_rows(named=True):
        out += [f"## {e['edit_id']} · {e['kind']} · {e['section'] or '(top)'}", ""]
        out += describe(e)
        out += ["verdict:", "reason:", ""]
    if held.height:
        out += ["## Held back", ""]
        for e in held.iter_rows(named=True):
            out.append(f"- {e['edit_id']} ({e['kind']}) {_bare(e['text'])}: {e['note']}")
        out.append("")
    return "\n".join(out)


def parse(text: str) -> dict[str, tuple[str | None, str | None]]:
    """{edit_id: (verdict or None, reason or None)} for every entry of the file."""
    found: dict[str, tuple[str | None, str | None]] = {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        if m := _ENTRY.match(line):
            current = m.group(1)
            found[current] = (None, None)
        elif line.startswith("## "):
            current = None
        elif current and (m := _VERDICT.match(line)):
            word = m.group(1).lower()
            if word and word not in WORDS:
                raise ReviewFileError(
                    f"line {number}: verdict {m.group(1)!r} of {current} is not accept or reject"
                )
            found[current] = (WORDS.get(word), found[current][1])
        elif current and (m := _REASON.match(line)):
            found[current] = (found[current][0], m.group(1).strip() or None)
    return found


def has_verdicts(path: Path) -> bool:
    try:
        return any(v for v, _ in parse(path.read_text(encoding="utf-8")).values())
    except (OSError, ReviewFileError):
        return path.exists()
