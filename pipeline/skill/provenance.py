"""Provenance read off a written skill: one row per line, with the statement that wrote it.

Every statement, i.e. every non-blank line of every Markdown file that came from the base skill or
from a lesson (frontmatter, and the headings and lead-in lines the writer adds to hold statements,
excepted), becomes a row: its file, 1-based line number in the file as written, the heading it
sits under, its text, its origin (base, added, revised) and the statement id (`item`) behind it,
if any. The consolidate stage joins these rows with the clusters and lessons behind each
statement (`skill_lines`).
"""

from __future__ import annotations

import polars as pl

from pipeline.skill.folder import SkillFolder

LINE_COLUMNS = {
    "file": pl.String,
    "line_no": pl.Int64,
    "section": pl.String,
    "text": pl.String,
    "origin": pl.String,
    "item_id": pl.String,
}


def line_rows(folder: SkillFolder) -> pl.DataFrame:
    rows = []
    for path, doc in folder.markdown().items():
        offset = doc.offset
        sections = doc.section_of()
        for i, ln in enumerate(doc.lines):
            if ln.text.strip() and ln.origin != "structure":
                rows.append((path, i + 1 + offset, sections[i], ln.text, ln.origin, ln.item))
    return pl.DataFrame(rows, schema=LINE_COLUMNS, orient="row")
