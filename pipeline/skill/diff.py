"""What changed between two versions of a skill: statement by statement, and file by file.

Reads the statements of each version from `skill_lines` of the consolidation run that wrote it
(`sql/skill_diff_statements.sql`); a version whose run left no lines (a folder found at OUT that
names no run) falls back to the lines of its files, read from `skill_files`, with no evidence.
Writes nothing: `diff_statements` returns a `StatementDiff`, which the `diff` command renders.

A statement of B is the same as one of A when their lesson sets overlap most (Jaccard at least
`MIN_JACCARD`, best pairs first, `sql/skill_diff_overlaps.sql`), failing that when their
normalised texts are equal, and failing that, for lines of the base skill (and base lines a run
revised), when they hold the same place: the same file and section, in order. A pair whose
texts differ, or that moved to another file (out of SKILL.md into references/), is changed; what is left is added (in B) or removed (from A). Base lines present
in both with the same text are not part of the diff.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import duckdb
import polars as pl

from pipeline import sql
from pipeline.console import plural
from pipeline.skill.document import Document
from pipeline.skill.folder import SKILL_FILE, SkillFolder
from pipeline.skill.provenance import line_rows

MIN_JACCARD = 0.5
EVIDENCE = ("n_trajectories", "n_tasks", "n_failures", "n_successes")
STATEMENT_COLUMNS = {
    "statement_key": pl.String,
    "item_id": pl.String,
    "file": pl.String,
    "line_no": pl.Int64,
    "section": pl.String,
    "text": pl.String,
    "origin": pl.String,
    "lesson_ids": pl.List(pl.String),
    **{c: pl.Int64 for c in EVIDENCE},
    "n_lines": pl.Int64,
}
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_BOLD_LEAD = re.compile(r"^\*\*(.+?)\*\*")
_MARKUP = re.compile(r"[*_`\\]")
_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    """A statement's text for comparison: no list marker, emphasis, escapes, case or spacing.

    An entry of references/ (`- **Title** details and an example`) compares by its title, the
    text its SKILL.md bullet carries: the example changes with the runs, not the statement."""
    text = _LIST_MARK.sub("", text)
    if lead := _BOLD_LEAD.match(text):
        text = lead.group(1)
    text = _MARKUP.sub("", text)
    return _WS.sub(" ", text).strip().lower().rstrip(" .;:")


def run_statements(con: duckdb.DuckDBPyConnection, run_id: str | None) -> pl.DataFrame:
    if run_id is None:
        return pl.DataFrame(schema=STATEMENT_COLUMNS)
    return sql.query(con, "skill_diff_statements", run_id=run_id).select(
        [pl.col(c).cast(t) for c, t in STATEMENT_COLUMNS.items()]
    )


def file_statements(files: dict[str, str]) -> pl.DataFrame:
    """Statements read off the Markdown files alone: one per non-blank line, no lessons."""
    folder = SkillFolder(
        {
            path: Document.parse(text, with_frontmatter=path == SKILL_FILE)
            for path, text in files.items()
            if path.endswith(".md")
        }
    )
    lines = line_rows(folder) if SKILL_FILE in folder.files else pl.DataFrame()
    if lines.height == 0:
        return pl.DataFrame(schema=STATEMENT_COLUMNS)
    return lines.with_columns(
        statement_key=pl.format("{}:{}", "file", "line_no"),
        lesson_ids=pl.lit([], pl.List(pl.String)),
        **{c: pl.lit(0, pl.Int64) for c in EVIDENCE},
        n_lines=pl.lit(1, pl.Int64),
    ).select([pl.col(c).cast(t) for c, t in STATEMENT_COLUMNS.items()])


@dataclass
class StatementDiff:
    added: list[dict] = field(default_factory=list)  # statements of B
    removed: list[dict] = field(default_factory=list)  # statements of A
    # {"old", "new", "matched_by", "jaccard"}: a new text, or moved to another file
    changed: list[dict] = field(default_factory=list)
    n_unchanged: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "unchanged": self.n_unchanged,
        }

    def by_section(self) -> dict[str, list[tuple[str, dict]]]:
        """(kind, entry) per section, in file and line order of the statement shown."""
        entries = [("added", s) for s in self.added] + [("removed", s) for s in self.removed]
        entries += [("changed", c) for c in self.changed]

        def place(entry: tuple[str, dict]) -> tuple:
            kind, e = entry
            s = e["new"] if kind == "changed" else e
            return (s["file"] != SKILL_FILE, s["file"], s["line_no"], kind)

        sections: dict[str, list[tuple[str, dict]]] = {}
        for kind, e in sorted(entries, key=place):
            s = e["new"] if kind == "changed" else e
            sections.setdefault(s["section"] or "(top)", []).append((kind, e))
        return sections


def _lesson_pairs(con: duckdb.DuckDBPyConnection, a: pl.DataFrame, b: pl.DataFrame) -> list:
    """Best-first one-to-one pairs of statements whose lesson sets overlap enough."""
    con.register("a_statements", a.select("statement_key", "lesson_ids"))
    con.register("b_statements", b.select("statement_key", "lesson_ids"))
    try:
        overlaps = sql.query(con, "skill_diff_overlaps", min_jaccard=MIN_JACCARD)
    finally:
        for name in ("a_statements", "b_statements"):
            con.unregister(name)
    pairs, used_a, used_b = [], set(), set()
    for a_key, b_key, _, jaccard in overlaps.iter_rows():
        if a_key not in used_a and b_key not in used_b:
            used_a.add(a_key)
            used_b.add(b_key)
            pairs.append((a_key, b_key, "lessons", jaccard))
    return pairs


def _pair_in_order(a: list[dict], b: list[dict], key, how: str) -> list:
    """Pair statements with equal `key`, the n-th of A with the n-th of B."""
    waiting: dict = {}
    for s in b:
        waiting.setdefault(key(s), []).append(s)
    pairs = []
    for s in a:
        if waiting.get(key(s)):
            pairs.append((s["statement_key"], waiting[key(s)].pop(0)["statement_key"], how, None))
    return pairs


def diff_statements(
    con: duckdb.DuckDBPyConnection, a: pl.DataFrame, b: pl.DataFrame
) -> StatementDiff:
    """Statements of version B against version A (see the module docstring for the matching)."""
    rows_a = {s["statement_key"]: s for s in a.sort("file", "line_no").iter_rows(named=True)}
    rows_b = {s["statement_key"]: s for s in b.sort("file", "line_no").iter_rows(named=True)}
    pairs = _lesson_pairs(con, a, b)

    def left() -> tuple[list[dict], list[dict]]:
        done_a, done_b = {p[0] for p in pairs}, {p[1] for p in pairs}
        return (
            [s for k, s in rows_a.items() if k not in done_a],
            [s for k, s in rows_b.items() if k not in done_b],
        )

    pairs += _pair_in_order(*left(), lambda s: normalise(s["text"]), "text")
    base = ("base", "revised")
    rest_a, rest_b = (
        [s for s in side if s["origin"] in base and not s["text"].lstrip().startswith("#")]
        for side in left()
    )  # headings are the sections themselves: a renamed one is not a statement changed
    pairs += _pair_in_order(rest_a, rest_b, lambda s: (s["file"], s["section"]), "place")

    result = StatementDiff()
    for a_key, b_key, how, jaccard in pairs:
        old, new = rows_a[a_key], rows_b[b_key]
        if normalise(old["text"]) == normalise(new["text"]) and old["file"] == new["file"]:
            result.n_unchanged += 1
        else:
            result.changed.append({"old": old, "new": new, "matched_by": how, "jaccard": jaccard})
    removed, added = left()
    result.removed, result.added = removed, added
    return result


def evidence(statement: dict) -> dict[str, int]:
    return {
        "runs": statement["n_trajectories"],
        "tasks": statement["n_tasks"],
        "failures": statement["n_failures"],
        "successes": statement["n_successes"],
        "lessons": len(statement["lesson_ids"] or []),
    }


def evidence_text(statement: dict) -> str:
    if statement["origin"] == "base" and not statement["lesson_ids"]:
        return "base skill"
    e = evidence(statement)
    return (
        f"{plural(e['runs'], 'run')} ({e['failures']} failed, {e['successes']} succeeded), "
        f"{plural(e['tasks'], 'task')}, {plural(e['lessons'], 'lesson')}"
    )


def statement_json(statement: dict) -> dict:
    keys = ("file", "line_no", "section", "text", "origin", "item_id")
    return {k: statement[k] for k in keys} | {"evidence": evidence(statement)}


def diff_json(d: StatementDiff) -> dict:
    return {
        "counts": d.counts(),
        "added": [statement_json(s) for s in d.added],
        "changed": [
            {
                "old": statement_json(c["old"]),
                "new": statement_json(c["new"]),
                "matched_by": c["matched_by"],
                "jaccard": c["jaccard"],
            }
            for c in d.changed
        ],
        "removed": [statement_json(s) for s in d.removed],
    }


def file_diff(a: dict[str, str], b: dict[str, str], a_label: str, b_label: str) -> str:
    """A unified diff of every file of the two versions (a file only on one side against none)."""
    out: list[str] = []
    for path in sorted(set(a) | set(b)):
        old, new = a.get(path), b.get(path)
        if old == new:
            continue
        out.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"{a_label}/{path}" if old is not None else "/dev/null",
                tofile=f"{b_label}/{path}" if new is not None else "/dev/null",
            )
        )
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
    return "".join(out)
