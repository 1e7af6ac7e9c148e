"""The read-only SQL guard: which statements pass, and what a locked connection can reach."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from pipeline import sqlguard


@pytest.mark.parametrize(
    "text",
    [
        "select 1",
        "with x as (select 1 as a) select a from x",
        "from range(3)",
        "describe select 1 as a",
        "show tables",
        "summarize select 1 as a",
        "values (1), (2)",
        "select $n + 1",
    ],
)
def test_select_kinds_pass(text):
    assert len(sqlguard.select_statements(text)) == 1


@pytest.mark.parametrize(
    "text,kind",
    [
        ("copy (select 1) to 'x.csv'", "COPY"),
        ("attach 'x.duckdb' as x", "ATTACH"),
        ("install json", "LOAD"),
        ("load json", "LOAD"),
        ("set threads = 1", "SET"),
        ("reset threads", "SET"),
        ("pragma version", "PRAGMA"),
        ("call pragma_version()", "CALL"),
        ("checkpoint", "CALL"),
        ("export database 'out'", "EXPORT"),
        ("with x as (select 1) insert into t select * from x", "INSERT"),
        ("create table t as select 1", "CREATE"),
        ("explain analyze copy (select 1) to 'x.csv'", "EXPLAIN"),
        ("set variable v = 1", "SET"),
    ],
)
def test_other_statements_are_refused(text, kind):
    with pytest.raises(sqlguard.SqlRefused, match=f"only a SELECT .* is allowed, not {kind}$"):
        sqlguard.select_statements(text, at_most=None)


def test_several_statements():
    assert len(sqlguard.select_statements("select 1; select 2;", at_most=None)) == 2
    with pytest.raises(sqlguard.SqlRefused, match="one statement only, got 2"):
        sqlguard.check_select("select 1; select 2")
    text = "select 1;\nselect 2;\ncopy   (select 1)\n to '/tmp/x.csv'"
    with pytest.raises(sqlguard.SqlRefused) as refused:
        sqlguard.select_statements(text, at_most=None)
    assert str(refused.value) == (
        "statement 3 of 3 (`copy (select 1) to '/tmp/x.csv'`): "
        "only a SELECT (or WITH ... SELECT) is allowed, not COPY"
    )


@pytest.mark.parametrize(
    "text,reason", [("", "the query is empty"), ("-- nothing", "empty"), ("selec 1", "not valid")]
)
def test_empty_or_broken_text(text, reason):
    with pytest.raises(sqlguard.SqlRefused, match=reason):
        sqlguard.select_statements(text)


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """A readable folder, a private file beside it, and a file in ./.tmp (DuckDB's default
    temporary folder) under the working folder."""
    monkeypatch.chdir(tmp_path)
    readable = tmp_path / "lake" / "t"
    readable.mkdir(parents=True)
    (readable / "a.csv").write_text("a\n1\n")
    (tmp_path / "secret.csv").write_text("a\n2\n")
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "note.txt").write_text("private")
    return tmp_path, readable


def refused(con, text):
    with pytest.raises(duckdb.PermissionException):
        con.sql(text).fetchall()


@pytest.mark.parametrize("spill", [False, True])
def test_locked_connection_reads_only_its_folders(folders, spill):
    root, readable = folders
    con = duckdb.connect(":memory:")
    sqlguard.lock(con, readable=[str(readable)], spill=spill)
    assert con.sql(f"select a from read_csv('{readable}/a.csv')").fetchall() == [(1,)]
    refused(con, f"select * from read_csv('{root}/secret.csv')")
    refused(con, f"select * from read_csv('{readable}/../../secret.csv')")
    refused(con, "select * from read_text('/etc/passwd')")
    refused(con, "select * from read_text('.tmp/note.txt')")
    refused(con, f"select * from read_text('{root}/.tmp/note.txt')")
    refused(con, "select * from glob('/etc/*')")
    spill_dir = con.sql("select current_setting('temp_directory')").fetchall()[0][0]
    if spill:
        assert Path(spill_dir).is_dir() and not Path(spill_dir).is_relative_to(root)
        assert Path(spill_dir).stat().st_mode & 0o077 == 0, "private to the user"
        assert os.listdir(spill_dir) == []
    else:
        assert spill_dir == ""
    # Statements the guard refuses are refused by the connection as well.
    with pytest.raises(duckdb.Error):
        con.execute("set enable_external_access = true")
    with pytest.raises(duckdb.Error):
        con.execute("set allowed_directories = ['/']")
    with pytest.raises(duckdb.Error):
        con.execute("load httpfs")
    con.close()
    del con
    if spill:
        assert not Path(spill_dir).exists(), "the spill folder goes with the connection"


def test_a_locked_connection_still_spills(folders):
    con = duckdb.connect(":memory:")
    con.execute("set memory_limit = '40MB'")
    con.execute("set threads = 1")
    sqlguard.lock(con, spill=True)
    query = "select count(*) from (select range % 2000000 as k, count(*) from range(4000000) group by 1)"
    assert con.sql(query).fetchall() == [(2000000,)]
    con.close()
