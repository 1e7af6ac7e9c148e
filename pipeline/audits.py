"""Audits: SQL that returns the rows breaking a table's rule, attached to the tables it checks.

An audit is a file ``sql/audit_<name>.sql`` whose header names the tables it audits
(``-- Audits: steps, trajectories.``); it reads the lake's views and returns the offending rows,
so an empty result is a pass. A row there is a fault of trace2skill (or another process caught
between two writes), never of the input, which is reported where it is read.

`trace2skill audit` runs them (all, or those of the tables one stage writes); `after(lake, stage)`
runs a stage's audits when it ends if ``T2S_AUDIT=1`` is set, and warns of each that found rows.
They read whole tables, so they are not run after every stage by default: on a lake of 3,000
raw files (3,000 parts per table) they took about 3 s, where re-ingesting the unchanged files
took 1.5 s. The stage tests run every audit after every stage. The consolidation's own audits
run inside each consolidation over the relations of that run (their headers name no table).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache

import duckdb
import polars as pl

from pipeline import sql
from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.stages import BY_NAME

_AUDITS = re.compile(r"(?im)^--\s*audits:\s*([\w ,]+?)\.?\s*$")


@dataclass(frozen=True)
class Finding:
    audit: str
    rows: pl.DataFrame


@cache
def catalogue() -> dict[str, tuple[str, ...]]:
    """Audit name -> the tables it audits, from the SQL files' headers."""
    out = {}
    for path in sorted(sql.SQL_DIR.glob("audit_*.sql")):
        header = _AUDITS.search(path.read_text(encoding="utf-8"))
        if header:
            out[path.stem] = tuple(t.strip() for t in header[1].split(",") if t.strip())
    return out


def of_tables(tables: set[str] | tuple[str, ...]) -> list[str]:
    """The audits of any of `tables`."""
    return [name for name, audited in catalogue().items() if set(audited) & set(tables)]


def run(lake: Lake, tables: set[str] | tuple[str, ...]) -> list[Finding]:
    """Every audit of `tables` that found rows, with them (an audit of a table the lake does not
    hold yet finds nothing)."""
    names = [n for n in of_tables(tables) if all(lake.exists(t) for t in catalogue()[n])]
    if not names:
        return []
    con = sql.connect(lake)
    try:
        found = []
        for name in names:
            try:
                rows = sql.query(con, name)
            except duckdb.Error as exc:  # an audit that cannot run is a finding too
                rows = pl.DataFrame({"error": [str(exc)]})
            if rows.height:
                found.append(Finding(name, rows))
        return found
    finally:
        con.close()


ENV = "T2S_AUDIT"


def after(lake: Lake, stage: str, console: Console | None = None) -> list[Finding]:
    """With ``T2S_AUDIT=1``: the audits of the tables `stage` writes, run now; each finding is a
    warning. Without it, nothing."""
    if os.environ.get(ENV) != "1":
        return []
    findings = run(lake, BY_NAME[stage].writes)
    for f in findings:
        if console is not None:
            console.warn(
                f"audit {f.audit} found {f.rows.height} row(s) after {stage} "
                f"(`trace2skill audit --lake {lake.uri} --show` lists them): please report it"
            )
    return findings
