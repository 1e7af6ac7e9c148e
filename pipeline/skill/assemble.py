"""A skill folder built from a candidate and the version it would replace, edit by edit.

A proposal is the folder a consolidation wrote (the candidate, C) read against the version in
use (A) as statement edits: added, changed, removed (`pipeline.skill.diff`). `assemble` starts
from C's files and takes back every edit it is told to revert: an added statement loses its
lines, a removed one gets A's lines back in its section, a changed one gets A's lines in place of
C's. Statements are whole items: a SKILL.md bullet, its entry in references/ and the entry's
evidence line go together, whatever the files. What the writer added only to hold statements (a
section heading, the "Learned from runs" lead-in, a references file) goes when nothing is left
under it that A did not have.

Each line remembers the `skill_lines` row behind it (C's, or A's for lines taken back), so the
assembled folder has its provenance rows too, renumbered (`Assembled.lines`). Reads and writes
nothing: frames and dicts in, frames and dicts out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from pipeline.skill.folder import SKILL_FILE

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FRONTMATTER_END = "---"


@dataclass
class Row:
    text: str
    line: dict | None = None  # its skill_lines row (None: structure the writer added)

    @property
    def key(self) -> str | None:
        return self.line["statement_key"] if self.line else None


@dataclass
class Edit:
    """One statement edit of C against A: the statement keys on each side (None where absent)."""

    edit_id: str
    kind: str  # added / changed / removed
    old_key: str | None
    new_key: str | None


@dataclass
class Assembled:
    files: dict[str, str | bytes]
    lines: pl.DataFrame  # skill_lines rows of the assembled folder (with statement_key)
    problems: list[str] = field(default_factory=list)  # edits that could not be taken back whole


def _split(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _rows(files: dict[str, str], lines: pl.DataFrame) -> dict[str, list[Row]]:
    by_place = {(r["file"], r["line_no"]): r for r in lines.iter_rows(named=True)}
    return {
        path: [Row(t, by_place.get((path, i + 1))) for i, t in enumerate(_split(text))]
        for path, text in files.items()
    }


def _markdown(files: dict[str, str]) -> dict[str, str]:
    return {p: t for p, t in files.items() if p.endswith(".md")}


def as_files(raw: dict[str, bytes]) -> dict[str, str | bytes]:
    """A folder's files as `assemble` takes them: Markdown as text, the rest as bytes."""
    return {
        p: d.decode("utf-8", errors="replace") if p.endswith(".md") else d for p, d in raw.items()
    }


def as_bytes(files: dict[str, str | bytes]) -> dict[str, bytes]:
    return {p: d.encode("utf-8") if isinstance(d, str) else d for p, d in files.items()}


def _heading(text: str) -> tuple[int, str] | None:
    m = _HEADING.match(text)
    return (len(m.group(1)), re.sub(r"\s+", " ", m.group(2)).strip().lower()) if m else None


def _body_start(rows: list[Row], path: str) -> int:
    """Index of the first body line (after SKILL.md's frontmatter)."""
    if path == SKILL_FILE and rows and rows[0].text.strip() == _FRONTMATTER_END:
        for i in range(1, len(rows)):
            if rows[i].text.strip() == _FRONTMATTER_END:
                return i + 1
    return 0


def _delete(rows: list[Row], key: str) -> list[Row]:
    """Rows without the statement's lines; each block removed takes one blank line with it."""
    out: list[Row] = []
    i = 0
    while i < len(rows):
        if rows[i].key != key:
            out.append(rows[i])
            i += 1
            continue
        while i < len(rows) and rows[i].key == key:
            i += 1
        if i < len(rows) and not rows[i].text.strip():
            i += 1  # the blank after the block
        elif out and not out[-1].text.strip():
            out.pop()  # else the blank before it
    return out


def _anchor(rows: list[Row], path: str, section: str | None) -> int | None:
    """Where a statement of `section` goes: after the section's last statement line, else
    after its heading; None when the file has no such section."""
    want = (section or "").strip().lower()
    last = None
    for i, r in enumerate(rows):
        if r.line is not None and (r.line["section"] or "").strip().lower() == want:
            last = i
    if last is not None:
        return last + 1
    for i in range(_body_start(rows, path), len(rows)):
        h = _heading(rows[i].text)
        if h and h[1] == want:
            return i + 1
    return None


def _insert(rows: list[Row], path: str, block: list[Row], section: str | None) -> list[Row]:
    at = _anchor(rows, path, section)
    if at is None:  # the section is gone: it comes back at the end of the file
        tail = [Row(""), Row(f"## {section}")] if section else []
        return [*rows, *tail, Row(""), *block]
    return [*rows[:at], Row(""), *block, *rows[at:]]


def _restore(
    files: dict[str, list[Row]], old: dict[str, list[Row]], key: str, skip: set[str] = frozenset()
) -> None:
    """Put A's lines of statement `key` back into the files, file by file (except `skip`)."""
    for path, rows in old.items():
        if path in skip:
            continue
        block = [r for r in rows if r.key == key]
        if not block:
            continue
        if path not in files:  # a file only A had: its lead-in, then the statement
            first = next(i for i, r in enumerate(rows) if r.key is not None)
            files[path] = [r for r in rows[:first] if r.line is None] + block
            continue
        files[path] = _insert(files[path], path, block, block[0].line["section"])


def _replace(
    files: dict[str, list[Row]], old: dict[str, list[Row]], old_key: str, new_key: str
) -> None:
    """A's lines of a statement in place of C's, in every file that holds either."""
    placed = set()
    for path, rows in list(files.items()):
        block = [r for r in old.get(path, []) if r.key == old_key]
        at = next((i for i, r in enumerate(rows) if r.key == new_key), None)
        if at is None or not block:
            files[path] = _delete(rows, new_key) if at is not None else rows
            continue
        kept = [r for r in rows[at:] if r.key != new_key]
        files[path] = [*rows[:at], *block, *kept]
        placed.add(path)
    _restore(files, old, old_key, skip=placed)


def _holds_statements(rows: list[Row]) -> bool:
    return any(r.line is not None for r in rows)


def _scope(rows: list[Row], i: int) -> list[Row]:
    """The rows a structure line holds: a heading's section, or a lead-in's rest of section."""
    level = (_heading(rows[i].text) or (7, ""))[0]
    held = []
    for later in rows[i + 1 :]:
        h = _heading(later.text)
        if h and h[0] <= level:
            break
        held.append(later)
    return held


def _holders(files: dict[str, list[Row]]) -> set[int]:
    """Structure lines (by identity) that hold statements."""
    return {
        id(r)
        for rows in files.values()
        for i, r in enumerate(rows)
        if r.line is None and r.text.strip() and _holds_statements(_scope(rows, i))
    }


def _tidy(
    files: dict[str, list[Row]], original: dict[str, list[Row]], holders: set[int]
) -> dict[str, list[Row]]:
    """Drop what the writer added to hold statements once it holds none that A lacked, and
    runs of blank lines; `holders` are the structure lines that held statements in C."""
    out = {}
    for path, rows in files.items():
        if path not in original and not _holds_statements(rows):
            continue  # a file C added whose statements were all taken back
        known = {r.text for r in original.get(path, [])}
        start = _body_start(rows, path)
        kept = rows[:start]
        for i in range(start, len(rows)):
            r = rows[i]
            emptied = id(r) in holders and not _holds_statements(_scope(rows, i))
            if r.line is None and r.text not in known and emptied:
                continue
            if not r.text.strip() and kept[start:] and not kept[-1].text.strip():
                continue  # one blank line at a time
            kept.append(r)
        while kept and not kept[-1].text.strip():
            kept.pop()
        out[path] = kept
    return out


def assemble(
    a_files: dict[str, str],
    a_lines: pl.DataFrame,
    c_files: dict[str, str],
    c_lines: pl.DataFrame,
    edits: list[Edit],
    revert: set[str],
) -> Assembled:
    """C with the edits whose ids are in `revert` taken back (see the module docstring).

    `a_lines` and `c_lines` are the versions' `skill_lines` rows with a `statement_key` column;
    lines of the files with no row are structure."""
    old = _rows(_markdown(a_files), a_lines)
    files = _rows(_markdown(c_files), c_lines)
    holders = _holders(files)
    for e in edits:
        if e.edit_id not in revert:
            continue
        if e.kind == "added":
            files = {p: _delete(rows, e.new_key) for p, rows in files.items()}
        elif e.kind == "removed":
            _restore(files, old, e.old_key)
        else:
            _replace(files, old, e.old_key, e.new_key)
    files = _tidy(files, old, holders)
    texts, rows = {}, []
    for path in sorted(files):
        texts[path] = "\n".join(r.text for r in files[path]) + "\n"
        for i, r in enumerate(files[path]):
            if r.line is not None:
                rows.append(r.line | {"file": path, "line_no": i + 1})
    for path, data in c_files.items():
        if not path.endswith(".md") and path not in texts:
            texts[path] = data  # files that hold no statements pass through, bytes and all
    schema = c_lines.schema if c_lines.width else a_lines.schema
    lines = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    return Assembled(dict(sorted(texts.items())), lines)
