"""The interactive SQL prompt of ``trace2skill sql -i`` (and ``make sql``).

Reads statements (ended by ``;``, over as many lines as needed) and prints each result as a table.
Dot commands: ``.tables``, ``.schema NAME``, ``.help``, ``.quit``. History is kept with readline
in ``$T2S_SQL_HISTORY`` (default ``~/.trace2skill_sql_history``). Reads the lake and writes
nothing to it: statements go through `query` (SELECT only, on its locked connection).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from pipeline import schemas
from pipeline.console import Console
from pipeline.report import output, query
from pipeline.report.views import view_descriptions

HELP = """\
Statements end with ';' and may span lines. Every lake table and view is there by name.
Read-only: SELECT (WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, VALUES) runs, nothing else.
  .tables          tables and views, with what one row is
  .schema NAME     columns of a table or view
  .help            this text
  .quit            leave (or Ctrl-D)"""


def history_path() -> Path:
    return Path(os.environ.get("T2S_SQL_HISTORY", "~/.trace2skill_sql_history")).expanduser()


def _readline(path: Path):
    try:
        import readline
    except ImportError:  # not on every platform; the prompt works without history
        return None
    readline.set_history_length(1000)
    if path.is_file():
        try:
            readline.read_history_file(str(path))
        except OSError:
            pass
    return readline


def tables_frame() -> pl.DataFrame:
    rows = [(name, "table", spec.grain) for name, spec in sorted(schemas.REGISTRY.items())]
    rows += [(name, "view", text) for name, text in view_descriptions().items()]
    rows.append(("lake_columns", "table", "One row per column of every lake table."))
    return pl.DataFrame(rows, schema=["name", "kind", "holds"], orient="row")


def schema_frame(con: duckdb.DuckDBPyConnection, name: str) -> pl.DataFrame:
    described = con.sql(f"describe select * from {_ident(name)}").pl()
    described = described.select(
        pl.col("column_name").alias("column"), pl.col("column_type").alias("type")
    )
    if name in schemas.REGISTRY:
        desc = schemas.table(name).descriptions
        described = described.with_columns(
            pl.col("column").replace_strict(desc, default="").alias("description")
        )
    return described


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run(
    con: duckdb.DuckDBPyConnection,
    console: Console,
    *,
    read: Callable[[str], str] = input,
    max_rows: int = 100,
) -> None:
    """The read-eval-print loop; returns on .quit or end of input."""
    path = history_path()
    rl = _readline(path)
    interactive = sys.stdin.isatty()
    console.info("trace2skill SQL over the lake. End statements with ';'. .help for help.")
    buffer: list[str] = []
    try:
        while True:
            try:
                line = read("t2s> " if not buffer else "...> ")
            except EOFError:
                break
            except KeyboardInterrupt:
                buffer = []
                console.info("")
                continue
            stripped = line.strip()
            if not buffer and stripped.startswith("."):
                if rl is not None and not interactive:
                    rl.add_history(stripped)
                if not _dot(con, console, stripped, max_rows):
                    break
                continue
            if not stripped and not buffer:
                continue
            buffer.append(line)
            if not stripped.endswith(";"):
                continue
            statement = "\n".join(buffer)
            buffer = []
            if rl is not None and not interactive:
                rl.add_history(" ".join(statement.split()))
            _execute(con, console, statement, max_rows)
    finally:
        if rl is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                rl.write_history_file(str(path))
            except OSError as exc:
                console.warn(f"could not save the history to {path}: {exc}")


def _execute(con: duckdb.DuckDBPyConnection, console: Console, text: str, max_rows: int):
    try:
        frames = query.run(con, query.statements(text))
    except query.QueryError as exc:
        console.error(exc.message())
        return
    for frame in frames:
        output.show(console, frame, max_rows=max_rows)


def _dot(con: duckdb.DuckDBPyConnection, console: Console, command: str, max_rows: int) -> bool:
    """Run one dot command; False means leave."""
    word, _, arg = command.partition(" ")
    arg = arg.strip().rstrip(";")
    if word in (".quit", ".exit", ".q"):
        return False
    if word == ".help":
        console.out.print(HELP, markup=False)
    elif word == ".tables":
        output.show(console, tables_frame(), max_rows=1000)
    elif word == ".schema":
        if not arg:
            console.error(".schema needs a table or view name, e.g. .schema lessons")
        else:
            try:
                output.show(console, schema_frame(con, arg), max_rows=1000)
            except duckdb.Error:
                console.error(f"no table or view {arg!r}: .tables lists them")
    else:
        console.error(f"unknown command {word}: .help lists them")
    return True
