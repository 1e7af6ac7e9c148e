"""The user's SQL over the lake, read-only: what ``trace2skill sql`` and its prompt run.

Reads every lake table through `views.connect_views(read_only=True)`; writes nothing. The
connection is locked down by `sqlguard.lock`: it reads the lake's table folders and no other file,
attaches, installs and loads nothing, and keeps its settings; large queries spill to a private
temporary folder. A text may hold several statements if every one is a SELECT (WITH, FROM-first,
DESCRIBE, SHOW, SUMMARIZE and VALUES included): anything else is refused before any runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import polars as pl

from pipeline import sqlguard
from pipeline.errors import UserError
from pipeline.lake import Lake
from pipeline.report.views import connect_views

READ_ONLY = "`sql` only reads the lake"


class QueryError(UserError):
    """A query refused (not read-only, or reaching outside the lake) or failed, with the reason."""

    def __init__(self, reason: str, *, refused: bool):
        super().__init__(reason)
        self.reason = reason
        self.refused = refused

    def message(self, where: str = "") -> str:
        """`refused` / `query failed`, then `where` (e.g. " in FILE"), then the reason."""
        return f"{'refused' if self.refused else 'query failed'}{where}: {self.reason}"


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """Every lake table and convenience view on a connection that can only read the lake."""
    return connect_views(lake, read_only=True)


def statements(text: str) -> list[duckdb.Statement]:
    """The SELECT statements of `text`; `QueryError` naming the first that is not one."""
    try:
        return sqlguard.select_statements(text, at_most=None)
    except sqlguard.SqlRefused as exc:
        raise QueryError(f"{exc} ({READ_ONLY})", refused=True) from None


def run(
    con: duckdb.DuckDBPyConnection,
    found: list[duckdb.Statement],
    params: Mapping[str, object] | None = None,
) -> list[pl.DataFrame]:
    """The result of every statement, in order; each gets the `params` it names."""
    params = dict(params or {})
    named = set().union(*(s.named_parameters for s in found))
    unused = sorted(set(params) - named)
    if unused:
        listed = ", ".join(f"${name}" for name in unused)
        raise QueryError(f"no statement uses {listed} (given with -p)", refused=False)
    frames = []
    for statement in found:
        own = {name: params[name] for name in statement.named_parameters if name in params}
        try:
            rel = con.sql(statement, params=own or None)
            frames.append(rel.pl() if rel is not None else pl.DataFrame())
        except duckdb.PermissionException as exc:
            reason = f"{sqlguard.first_line(exc)} ({READ_ONLY}: its tables, no other file)"
            raise QueryError(reason, refused=True) from None
        except duckdb.Error as exc:
            raise QueryError(str(exc), refused=False) from None
    return frames
