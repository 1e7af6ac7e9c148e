"""SQL files by name, and DuckDB connections that see every lake table as a view.

Queries live in ``sql/<name>.sql``, one query per file with a header comment (purpose, grain,
inputs, ``$parameters``). Values go in as DuckDB named parameters, never by string formatting.
"""

from __future__ import annotations

from functools import cache

import duckdb
import polars as pl

from pipeline import resources, schemas
from pipeline.lake import Lake

SQL_DIR = resources.SQL_DIR


@cache
def load(name: str) -> str:
    """The text of ``sql/<name>.sql``; a missing file is an error naming it."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text(encoding="utf-8")


def connect(lake: Lake | None = None, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every lake table registered under its own name."""
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"set threads = {int(threads)}")
    if lake is not None:
        attach(con, lake)
    return con


def attach(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """(Re-)register every table of the lake; empty tables appear with their columns."""
    for name in schemas.REGISTRY:
        con.register(name, lake.dataset(name))


def query(con: duckdb.DuckDBPyConnection, name: str, **params) -> pl.DataFrame:
    """Run ``sql/<name>.sql`` with named parameters and return a polars frame."""
    return con.sql(load(name), params=params or None).pl()
