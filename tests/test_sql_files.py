"""Every SQL file names what it reads, and the view files are defined in dependency order.

A file's header says its inputs (`-- inputs:`); every relation its body reads (`from X`,
`join X`) must be one of its own CTEs or views, or be named there. The convenience views are
created file by file in `VIEW_FILES` order, so a file may only read views of earlier files."""

from __future__ import annotations

import re

import pytest

from pipeline import sql
from pipeline.report.views import VIEW_FILES, view_text

FILES = sorted(sql.SQL_DIR.rglob("*.sql"))
_INPUTS = re.compile(
    r"(?is)^--\s*inputs?:(.*?)(?=^--\s*(?:parameters|params|grain|output)\b|\Z)", re.M
)
_READS = re.compile(r"(?i)\b(?:from|join)\s+([a-z_][a-z0-9_]*)\b(?!\s*[.(])")
_DEFINES = re.compile(r"(?i)\b([a-z_][a-z0-9_]*)\s+as\s+(?:(?:not\s+)?materialized\s+)?\(")
_VIEW = re.compile(r"(?i)create\s+or\s+replace\s+view\s+([a-z_][a-z0-9_]*)")


def parts(text: str) -> tuple[str, str]:
    """(header comment, body without comments)."""
    lines = text.splitlines()
    n = next((i for i, line in enumerate(lines) if not line.startswith("--")), len(lines))
    body = "\n".join(line.split("--")[0] for line in lines[n:])
    return "\n".join(lines[:n]), body


def reads(text: str) -> set[str]:
    header, body = parts(text)
    own = set(_DEFINES.findall(body)) | set(_VIEW.findall(body))
    return {r for r in _READS.findall(body) if r not in own} - {"unnest", "range", "values"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(sql.SQL_DIR)))
def test_a_file_names_what_it_reads(path):
    text = path.read_text(encoding="utf-8")
    header, _ = parts(text)
    found = _INPUTS.search(header)
    assert found, f"{path.name}: no `-- inputs:` line in its header"
    missing = sorted(r for r in reads(text) if not re.search(rf"\b{r}\b", found.group(1)))
    assert missing == [], f"{path.name} reads {missing} without naming them in its inputs"


def test_the_parser_sees_reads():
    assert reads("-- x\nwith a as (select 1)\nselect * from a join b using (k), c") == {"b"}
    assert reads("-- x\nselect x is not distinct from l.x from t") == {"t"}


def test_view_files_come_after_the_views_they_read():
    defined: set[str] = set()
    everything = {v for f in VIEW_FILES for v in _VIEW.findall(view_text(f))}
    for name in VIEW_FILES:
        text = view_text(name)
        needed = {r for r in reads(text) if r in everything} - set(_VIEW.findall(text))
        assert needed <= defined, f"{name} reads {sorted(needed - defined)} defined later"
        defined |= set(_VIEW.findall(text))
