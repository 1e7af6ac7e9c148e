"""Fixtures for the evaluation tests: the shipped WikiTableQuestions sample and a small skill."""

from __future__ import annotations

from pathlib import Path

import pytest

SKILL_MD = """---
name: table-answering
description: How to answer questions over one table with SQL.
---
# Table answering

Read the question twice.

## Ordering questions

For "first", "last", "previous" or "next", order by row_id.

## Counting questions

Use count(*) and check the filter first.

## Numbers with commas

Cast with replace(x, ',', '') before comparing numbers.
"""


@pytest.fixture
def skill_dir(tmp_path: Path) -> Path:
    root = tmp_path / "table-answering"
    (root / "references").mkdir(parents=True)
    (root / "SKILL.md").write_text(SKILL_MD, encoding="utf-8")
    (root / "references" / "dates.md").write_text("Dates: compare years as integers.\n")
    return root
