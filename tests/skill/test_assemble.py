"""Edits taken back from a candidate skill, item by item, and the review file's verdicts."""

from __future__ import annotations

import polars as pl
import pytest

from pipeline.skill.assemble import Edit, assemble
from pipeline.skill.review_file import ReviewFileError, parse
from pipeline.skill.versions import LINE_COLUMNS

FRONT = "---\nname: s\ndescription: d\nmetadata:\n  consolidation-run: r\n---\n"

A = {
    "SKILL.md": FRONT + "# T\n\n## Book\n\n- keep this\n\n- old wording\n\n- to be removed\n",
    "references/book.md": "# Book: lessons\n\n- **old wording** detail\n  - Evidence: 2 runs\n",
}
C = {
    "SKILL.md": FRONT
    + "# T\n\n## Book\n\n- keep this\n\n- new wording\n\n## Refund\n\n"
    + "Learned from runs (see [references/refund.md](references/refund.md)):\n\n- brand new\n",
    "references/book.md": "# Book: lessons\n\n- **new wording** detail\n  - Evidence: 3 runs\n",
    "references/refund.md": "# Refund: lessons\n\n- **brand new** detail\n  - Evidence: 2 runs\n",
}


def lines(rows: list[tuple]) -> pl.DataFrame:
    """(file, line_no, section, text, item) -> skill_lines rows keyed by statement."""
    out = [
        {
            "statement_key": item or f"{file}:{no}",
            "file": file,
            "line_no": no,
            "section": section,
            "text": text,
            "origin": "added" if item else "base",
            "item_id": item,
            "cluster_ids": [],
            "lesson_ids": [item] if item else [],
            "merge_node_id": None,
            "n_trajectories": 2,
            "n_tasks": 1,
            "n_failures": 2,
            "n_successes": 0,
        }
        for file, no, section, text, item in rows
    ]
    return pl.DataFrame(out, schema=LINE_COLUMNS)


A_LINES = lines([
    ("SKILL.md", 7, "T", "# T", None),
    ("SKILL.md", 9, "Book", "## Book", None),
    ("SKILL.md", 11, "Book", "- keep this", "i-keep"),
    ("SKILL.md", 13, "Book", "- old wording", "i-old"),
    ("SKILL.md", 15, "Book", "- to be removed", "i-gone"),
    ("references/book.md", 3, "Book: lessons", "- **old wording** detail", "i-old"),
    ("references/book.md", 4, "Book: lessons", "  - Evidence: 2 runs", "i-old"),
])  # fmt: skip
C_LINES = lines([
    ("SKILL.md", 7, "T", "# T", None),
    ("SKILL.md", 9, "Book", "## Book", None),
    ("SKILL.md", 11, "Book", "- keep this", "i-keep"),
    ("SKILL.md", 13, "Book", "- new wording", "i-new"),
    ("SKILL.md", 19, "Refund", "- brand new", "i-brand"),
    ("references/book.md", 3, "Book: lessons", "- **new wording** detail", "i-new"),
    ("references/book.md", 4, "Book: lessons", "  - Evidence: 3 runs", "i-new"),
    ("references/refund.md", 3, "Refund: lessons", "- **brand new** detail", "i-brand"),
    ("references/refund.md", 4, "Refund: lessons", "  - Evidence: 2 runs", "i-brand"),
])  # fmt: skip
EDITS = [
    Edit("e1", "changed", "i-old", "i-new"),
    Edit("e2", "removed", "i-gone", None),
    Edit("e3", "added", None, "i-brand"),
]


def test_nothing_taken_back_is_the_candidate():
    built = assemble(A, A_LINES, C, C_LINES, EDITS, set())
    assert built.files == C
    assert (
        built.lines.sort("file", "line_no")
        .drop("line_no")
        .equals(C_LINES.sort("file", "line_no").drop("line_no"))
    )


def test_every_edit_taken_back_is_the_version_in_use():
    built = assemble(A, A_LINES, C, C_LINES, EDITS, {"e1", "e2", "e3"})
    assert built.files["references/book.md"] == A["references/book.md"]
    assert "references/refund.md" not in built.files  # a file that held only a rejected item
    skill = built.files["SKILL.md"]
    assert "## Refund" not in skill and "Learned from runs" not in skill
    assert skill == FRONT + "# T\n\n## Book\n\n- keep this\n\n- old wording\n\n- to be removed\n"
    by_text = {r["text"]: r for r in built.lines.iter_rows(named=True)}
    assert by_text["- to be removed"]["line_no"] == skill.splitlines().index("- to be removed") + 1
    assert by_text["  - Evidence: 2 runs"]["item_id"] == "i-old"  # A's row, with its evidence


def test_an_added_statement_rejected_takes_its_section_and_file_with_it():
    built = assemble(A, A_LINES, C, C_LINES, EDITS, {"e3"})
    assert "brand new" not in "".join(built.files.values())
    assert "## Refund" not in built.files["SKILL.md"]
    assert "- new wording" in built.files["SKILL.md"]
    assert "to be removed" not in built.files["SKILL.md"]  # the removal was accepted


def test_a_removal_rejected_puts_the_statement_back_in_its_section():
    built = assemble(A, A_LINES, C, C_LINES, EDITS, {"e2"})
    book = built.files["SKILL.md"].split("## Refund")[0]
    assert book.rstrip().endswith("- new wording\n\n- to be removed")
    assert "- brand new" in built.files["SKILL.md"]


def test_review_file_verdicts():
    text = (
        "# Proposal\n\n## e1 · added · Book\n\n+ x\nverdict: accept\nreason:\n\n"
        "## e2 · changed · Book\nverdict: R\nreason: too specific\n\n"
        "## e3 · removed · Book\nverdict:\nreason:\n\n## Held back\n\n- e4 (added) y\n"
    )
    assert parse(text) == {
        "e1": ("accept", None),
        "e2": ("reject", "too specific"),
        "e3": (None, None),
    }
    with pytest.raises(ReviewFileError, match="line 2: verdict 'maybe' of e1"):
        parse("## e1 · added · Book\nverdict: maybe\n")
