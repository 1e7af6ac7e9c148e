"""DuckDB over the lake: every table as a view, the convenience views of ``sql/views_*.sql``,
and the warehouse file that keeps them for other tools.

Reads every lake table (Parquet parts); writes nothing to the lake. ``build_warehouse`` writes one
``.duckdb`` file whose views read the lake's Parquet in place, so the Parquet stays the source of
truth and the file only needs rebuilding when a table appears for the first time. A read-only
connection (what ``trace2skill sql`` queries) and the warehouse build are locked down
(`sqlguard.lock`) before the convenience views are defined, so even the ``--where`` a
consolidation recorded reads nothing but the lake's tables.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from functools import cache
from pathlib import Path

import duckdb
import polars as pl

from pipeline import schemas, sqlguard
from pipeline import sql as sqlfiles
from pipeline.lake import Lake, LakeError
from pipeline.scope import RUN_FACTS

# Order matters: a view binds the views it reads when it is created.
VIEW_FILES = (
    "views_tool_calls",
    "views_lesson_facts",
    "views_skill",
    "views_lesson_fate",
    "views_latest",
    "views_run_scope",
)
_VIEW_NAME = re.compile(r"create\s+or\s+replace\s+view\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)
_GLOB_CHARS = re.compile(r"[*?\[\]{}]")


def latest_tables() -> str:
    """latest_<table> for every table the registry partitions by run_id: its rows of the newest
    consolidation run (generated, so a new run table gets its view without an edit here)."""
    run_tables = [n for n, t in schemas.REGISTRY.items() if t.partition_by == ("run_id",)]
    return "\n\n".join(
        f"create or replace view latest_{name} as\n"
        f"select * from {name} where run_id = (select run_id from latest_run);"
        for name in sorted(run_tables, key=lambda n: n != "consolidations")
    )


def view_text(name: str) -> str:
    """A view file's SQL with what is generated from the registry filled in."""
    return sqlfiles.load(name).replace("{latest_tables}", latest_tables())


def view_names() -> list[str]:
    """Every convenience view, in definition order."""
    return [m.group(1) for f in VIEW_FILES for m in _VIEW_NAME.finditer(view_text(f))]


def view_descriptions() -> dict[str, str]:
    """View name -> what it holds (the `-- name: ...` line of its header comment)."""
    out: dict[str, str] = {}
    for f in VIEW_FILES:
        text = view_text(f)
        heads = dict(re.findall(r"^-- ([a-z_]+): (.+)$", text, re.MULTILINE))
        for m in _VIEW_NAME.finditer(text):
            name = m.group(1)
            if name in heads:
                out[name] = heads[name]
            elif name == "latest_run":
                out[name] = "the newest consolidation run (one row)."
            else:
                out[name] = f"{name.removeprefix('latest_')} of the newest consolidation run."
    return out


def define_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create every convenience view on a connection that already sees the lake tables."""
    for name in VIEW_FILES:
        text = view_text(name)
        if name == "views_run_scope":
            text = text.replace("{branches}", scope_branches(con))
        con.execute(text)


def run_where(settings: str | None) -> str | None:
    """The --where a consolidation recorded in its settings JSON (None when it had none)."""
    try:
        where = json.loads(settings or "{}").get("where")
    except (json.JSONDecodeError, AttributeError):
        return None
    return where if isinstance(where, str) and where.strip() else None


def scope_branches(con: duckdb.DuckDBPyConnection) -> str:
    """The scope of runs consolidated before scopes were recorded (`pipeline.scope`): one select
    per such run with a --where, then every run of the lake for those without one (or
    consolidated after the view was defined without recording a scope)."""
    branches, listed = [], []
    for run_id, settings in con.sql(
        "select run_id, settings from consolidations "
        "where run_id not in (select run_id from consolidation_scope) order by run_id"
    ).fetchall():
        where = run_where(settings)
        if where is None or ";" in where:
            continue
        rid = quote_literal(run_id)
        listed.append(rid)
        try:
            # The condition is the user's own SQL, already run by consolidate on this lake.
            con.sql(f"select trajectory_id from ({RUN_FACTS}) as facts where ({where}\n) limit 0")
        except duckdb.Error:
            branches.append(
                f"select {rid} as run_id, f.trajectory_id, 'sources' as scope from facts as f "
                f"semi join sources_read as s on s.source = f.source and s.run_id = {rid}"
            )
            continue
        branches.append(
            f"select {rid} as run_id, trajectory_id, 'where' as scope from facts where ({where}\n)"
        )
    unlisted = f"and c.run_id not in ({', '.join(listed)})" if listed else ""
    branches.append(
        "select c.run_id, f.trajectory_id, 'lake' as scope "
        "from consolidations as c cross join facts as f "
        f"where c.run_id not in (select run_id from consolidation_scope) {unlisted}"
    )
    return "\n    union all\n".join("    " + b for b in branches)


def lake_columns() -> pl.DataFrame:
    """One row per column of every lake table: its type, description and the table's grain."""
    rows = []
    types = _duckdb_types()
    for name, spec in sorted(schemas.REGISTRY.items()):
        for col, description in spec.descriptions.items():
            rows.append(
                {
                    "table_name": name,
                    "column_name": col,
                    "column_type": types[name][col],
                    "description": description,
                    "is_partition": col in spec.partition_by,
                    "grain": spec.grain,
                }
            )
    return pl.DataFrame(rows)


def table_dirs(lake: Lake) -> list[str]:
    """The folders a read-only connection may read: every table's, on a local lake (an
    object-store lake is read through pyarrow datasets, so DuckDB reads no file at all)."""
    return [lake.table_dir(name) for name in schemas.REGISTRY] if lake.is_local else []


def connect_views(
    lake: Lake, *, threads: int | None = None, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection: every lake table, every convenience view, lake_columns.

    A local lake's tables are views over its Parquet read by DuckDB itself (several times faster
    than through pyarrow datasets); an object-store lake goes through pyarrow datasets. With
    `read_only`, the connection is locked down (`sqlguard.lock`): it reads the lake's table
    folders and no other file, and large queries spill to a private temporary folder.
    """
    if lake.is_local:
        con = sqlfiles.connect(None, threads=threads)
        types = _duckdb_types()
        for name in schemas.REGISTRY:
            con.execute(base_view_sql(lake, name, types[name]))
    else:
        con = sqlfiles.connect(lake, threads=threads)
    con.execute("set enable_progress_bar = false")
    if read_only:
        sqlguard.lock(con, readable=table_dirs(lake), spill=True)
    define_views(con)
    con.register("lake_columns", lake_columns())
    return con


# -- the warehouse file -----------------------------------------------------------------------
def quote_literal(text: str) -> str:
    """A SQL string literal: single quotes doubled, so any path survives."""
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@cache
def _duckdb_types() -> dict[str, dict[str, str]]:
    """DuckDB's type name for every column of every table (from the explicit Arrow schema)."""
    con = duckdb.connect(":memory:")
    out = {}
    for name in schemas.REGISTRY:
        con.register("t", schemas.arrow_schema(name, with_partitions=True).empty_table())
        out[name] = {row[0]: row[1] for row in con.sql("describe t").fetchall()}
        con.unregister("t")
    con.close()
    return out


def base_view_sql(lake: Lake, name: str, types: dict[str, str]) -> str:
    """DDL of the view over one table's Parquet parts (typed and empty while it has none)."""
    spec = schemas.table(name)
    columns = ", ".join(quote_ident(c) for c in spec.columns)
    parts = lake.parts(name)
    if not parts:
        typed = ", ".join(f"cast(null as {types[c]}) as {quote_ident(c)}" for c in spec.columns)
        return f"create or replace view {quote_ident(name)} as select {typed} where false"
    directory = lake.table_dir(name)
    if _GLOB_CHARS.search(directory):
        # A glob cannot escape these characters: list the parts (new parts need a rebuild).
        source = "[" + ", ".join(quote_literal(p) for p in parts) + "]"
    else:
        pattern = directory + "/*" * len(spec.partition_by) + "/part-*.parquet"
        source = quote_literal(pattern)
    options = ["union_by_name = true"]
    if spec.partition_by:
        hive = ", ".join(
            f"{quote_literal(k)}: {quote_literal(types[k])}" for k in spec.partition_by
        )
        options += ["hive_partitioning = true", f"hive_types = {{{hive}}}"]
    else:
        options.append("hive_partitioning = false")
    return (
        f"create or replace view {quote_ident(name)} as select {columns} "
        f"from read_parquet({source}, {', '.join(options)})"
    )


def build_warehouse(lake: Lake, out: str | os.PathLike) -> Path:
    """Write a DuckDB file of views over the lake's Parquet; replaces `out` atomically."""
    if not lake.is_local:
        raise LakeError(
            f"{lake.uri}: a warehouse file needs a local lake (DuckDB here cannot read object "
            "stores); query it with `trace2skill sql` instead"
        )
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    types = _duckdb_types()
    try:
        con = duckdb.connect(str(tmp))
        try:
            sqlguard.lock(con, readable=table_dirs(lake))
            for name in schemas.REGISTRY:
                con.execute(base_view_sql(lake, name, types[name]))
            define_views(con)
            con.register("lake_columns_frame", lake_columns())
            con.execute("create table lake_columns as select * from lake_columns_frame")
            con.unregister("lake_columns_frame")
            con.execute("checkpoint")
        finally:
            con.close()
        os.replace(tmp, out)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return out
