"""The `actions` table: what every tool call did, as programs and families.

Reads `steps` (through `sql/behaviour_calls.sql`, only runs not yet parsed by this parser
version); writes `actions` parts, one per source and run of this function, named
``part-<PARSER_VERSION>-<digest of the runs>``. A rerun parses only new runs; a new parser
version deletes the parts of the old one and parses everything again.

A shell call (`shell.shell_command`) becomes one action per program its command ran; an editor
call one file operation; a call of any other tool one action whose program and family are the
tool's name, so a domain's own tools (`get_user_details`, `Search`) are families of their own.
"""

from __future__ import annotations

import hashlib

import duckdb
import polars as pl

from pipeline import schemas, sql
from pipeline.analyse.miner.text import parse_args
from pipeline.analyse.shell import call_actions, is_test_path
from pipeline.lake import Lake

PARSER_VERSION = "shell-1"
_PART_PREFIX = f"part-{PARSER_VERSION}-"


def update_actions(lake: Lake, con: duckdb.DuckDBPyConnection) -> int:
    """Parse the calls of runs without actions; the number of actions rows written."""
    stale = [p for p in lake.parts("actions") if not p.rsplit("/", 1)[-1].startswith(_PART_PREFIX)]
    if stale:
        lake.delete_parts("actions", stale)
        sql.attach(con, lake)
    calls = sql.query(con, "behaviour_calls", parser_version=PARSER_VERSION)
    if not calls.height:
        return 0
    frame = actions_of(calls)
    for (source,), part in frame.group_by("source"):
        runs = sorted(part.get_column("trajectory_id").unique().to_list())
        digest = hashlib.sha256("\n".join(runs).encode()).hexdigest()[:16]
        lake.write_part(
            "actions", part, part=f"{PARSER_VERSION}-{digest}", partition={"source": source}
        )
    sql.attach(con, lake)
    return frame.height


def actions_of(calls: pl.DataFrame) -> pl.DataFrame:
    """Actions rows for calls (trajectory_id, source, call_step_idx, tool_name, tool_args,
    is_error). Identical (tool, arguments) pairs are parsed once."""
    parsed: dict[tuple[str, str | None], list[tuple]] = {}
    rows: list[tuple] = []
    for tid, source, step, tool, args, is_error in calls.select(
        "trajectory_id", "source", "call_step_idx", "tool_name", "tool_args", "is_error"
    ).iter_rows():
        tool = tool or "unknown"
        key = (tool, args)
        if key not in parsed:
            parsed[key] = _parse(tool, args)
        for idx, (program, sub, family, path, is_test, text) in enumerate(parsed[key]):
            rows.append(
                (tid, source, step, idx, tool, program, sub, family, path, is_test, bool(is_error),
                 text, PARSER_VERSION)
            )  # fmt: skip
    return pl.DataFrame(rows, schema=schemas.table("actions").columns, orient="row")


def _parse(tool: str, args: str | None) -> list[tuple]:
    actions = call_actions(tool, parse_args(args))
    if not actions:
        return [(tool, None, tool, None, False, None)]
    return [
        (a.program, a.subcommand, a.family, a.path, is_test_path(a.path), a.text or None)
        for a in actions
    ]
