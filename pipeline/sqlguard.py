"""Read-only SQL: which statements may run, and a DuckDB connection that cannot leave its data.

Reads and writes nothing itself. Every place that runs SQL written by someone else goes through
here: `trace2skill sql` (and its prompt), the agentic analyst's `query_pool` tool and the
WikiTableQuestions `sql` tool.

- `select_statements(text)`: the statements of `text`, each of type SELECT (WITH ... SELECT,
  FROM-first, DESCRIBE, SHOW, SUMMARIZE and VALUES parse as SELECT); anything else (COPY,
  ATTACH, INSTALL/LOAD, SET, PRAGMA, CALL, EXPORT, INSERT, CREATE, ...) is refused with
  `SqlRefused`, naming the statement.
- `lock(con, readable=...)`: after it the connection reads no file outside the `readable`
  folders (``enable_external_access = false``, ``allowed_directories``), loads and installs no
  extension, and no setting can change (``lock_configuration``). A SELECT cannot write a file,
  so the two together make the connection read-only. DuckDB always lets a query read its
  temporary folder, whose default is ``.tmp`` under the working folder: `lock` moves it to a
  fresh private folder of its own (``spill=True``) or switches spilling off.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterable

import duckdb

from pipeline.errors import UserError

SHOWN_CHARS = 80


class SqlRefused(UserError, ValueError):
    """SQL that a read-only surface does not run, with the reason."""


def first_line(exc: BaseException) -> str:
    """DuckDB's message without its hints: the first two lines, joined."""
    return " ".join(str(exc).split("\n", 2)[:2]).strip()


def _shown(query: str) -> str:
    text = " ".join(query.split())
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def select_statements(text: str, *, at_most: int | None = 1) -> list[duckdb.Statement]:
    """The statements of `text` (at most `at_most`; None: any number), every one a SELECT.

    Raises `SqlRefused` for empty text, text that does not parse, too many statements, or a
    statement of another type (named by its position and text when there are several)."""
    if not text or not text.strip():
        raise SqlRefused("the query is empty")
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise SqlRefused(f"not valid SQL: {first_line(exc)}") from None
    if not statements:
        raise SqlRefused("the query is empty")
    if at_most is not None and len(statements) > at_most:
        raise SqlRefused(f"one statement only, got {len(statements)}")
    for number, statement in enumerate(statements, 1):
        kind = statement.type
        if kind == duckdb.StatementType.SELECT:
            continue
        where = ""
        if len(statements) > 1:
            where = f"statement {number} of {len(statements)} (`{_shown(statement.query)}`): "
        raise SqlRefused(f"{where}only a SELECT (or WITH ... SELECT) is allowed, not {kind.name}")
    return statements


def check_select(text: str) -> duckdb.Statement:
    """The one SELECT statement of `text`; `SqlRefused` otherwise."""
    return select_statements(text, at_most=1)[0]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lock(
    con: duckdb.DuckDBPyConnection, *, readable: Iterable[str] = (), spill: bool = False
) -> None:
    """Lock `con` down: files only under `readable` (folders), no extensions, no settings.

    Call it once the connection's own views and settings are in place: nothing on `con` can
    change a setting afterwards. With `spill`, large queries spill to a fresh private folder
    (removed with the connection) that holds nothing but this connection's own spill files;
    without, nothing spills and no temporary folder is readable.
    """
    spill_dir = ""
    if spill:
        spill_dir = tempfile.mkdtemp(prefix="trace2skill-duckdb-")
        weakref.finalize(con, shutil.rmtree, spill_dir, True)
    folders = ", ".join(_literal(folder.rstrip("/") + "/") for folder in readable)
    for setting in (
        f"set temp_directory = {_literal(spill_dir)}",
        f"set allowed_directories = [{folders}]",
        "set autoinstall_known_extensions = false",
        "set autoload_known_extensions = false",
        "set enable_external_access = false",
        "set lock_configuration = true",
    ):
        con.execute(setting)
