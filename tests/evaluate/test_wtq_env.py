"""The WikiTableQuestions environment: prompts, the read-only SQL tool, submit and scoring."""

from __future__ import annotations

import pytest

from pipeline.evaluate import env as environments
from pipeline.evaluate.env import Environment, ToolError
from pipeline.evaluate.wikitablequestions.env import WikiTableQuestions, as_items


@pytest.fixture(scope="module")
def wtq() -> WikiTableQuestions:
    return WikiTableQuestions()


@pytest.fixture
def task(wtq):
    return next(t for t in wtq.tasks("train") if t.task_id == "nt-134")


def tools(wtq, task):
    return {t.name: t for t in wtq.tools(task)}


def test_is_an_environment(wtq):
    assert isinstance(wtq, Environment)
    assert len(wtq.tasks("train")) == 60 and len(wtq.tasks("test")) == 60
    assert [t.task_id for t in wtq.tasks("test", limit=5, seed=3)] == [
        t.task_id for t in wtq.tasks("test", limit=5, seed=3)
    ]


def test_prompt_shows_question_and_columns(wtq, task):
    assert task.prompt.startswith("Question: what is the last iec world plugs type in the list?")
    assert "Table `t` (27 rows, from csv/204-csv/794.csv)" in task.prompt
    assert "row_id (integer)" in task.prompt
    assert '- earthed (text, header "Earthed"): e.g. "No", "Yes*", "Yes"' in task.prompt
    assert task.gold == ["N"]
    assert task.meta == {
        "split": "train",
        "question": task.meta["question"],
        "table": "csv/204-csv/794.csv",
    }


def test_sql_tool_reads_the_table(wtq, task):
    sql = tools(wtq, task)["sql"]
    out = sql.handler({"query": "select count(*) as n from t"})
    assert out.splitlines()[0] == "n" and "(1 rows)" in out
    last = sql.handler({"query": "select * from t order by row_id desc limit 1"})
    assert last.splitlines()[1].split("\t")[:2] == ["27", "N"]
    assert tools(wtq, task)["submit"].submits


def test_episodes_see_their_own_table(wtq, task):
    other = next(t for t in wtq.tasks("test") if t.meta["table"] != task.meta["table"])
    mine, theirs = tools(wtq, task)["sql"], tools(wtq, other)["sql"]
    count = "select count(*) as n from t"
    assert mine.handler({"query": count}).splitlines()[1] == "27"
    assert theirs.handler({"query": count}).splitlines()[1] != "27"
    assert mine.handler({"query": count}).splitlines()[1] == "27"


@pytest.mark.parametrize(
    "query, message",
    [
        ("drop table t", "only a SELECT"),
        ("insert into t (row_id) values (99)", "only a SELECT"),
        ("create table u as select 1", "only a SELECT"),
        ("copy t to 'out.csv'", "only a SELECT"),
        ("attach 'x.db'", "only a SELECT"),
        ("set threads = 4", "only a SELECT"),
        ("select 1; select 2", "one statement only, got 2"),
        ("select * from read_csv('/etc/passwd')", "disabled"),
        ("selec 1", "not valid SQL"),
        ("select nope from t", "nope"),
    ],
)
def test_sql_tool_refuses(wtq, task, query, message):
    sql = tools(wtq, task)["sql"]
    with pytest.raises(ToolError, match=message):
        sql.handler({"query": query})
    assert "(1 rows)" in sql.handler({"query": "select count(*) from t"})  # table untouched


def test_sql_tool_reads_no_temporary_folder(task, tmp_path, monkeypatch):
    """DuckDB's default temporary folder, .tmp under the working folder, is readable by any
    query once file access is off: the tool's connection has none."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "note.txt").write_text("private")
    sql = tools(WikiTableQuestions(), task)["sql"]
    for path in (".tmp/note.txt", str(tmp_path / ".tmp" / "note.txt")):
        with pytest.raises(ToolError, match="Permission Error"):
            sql.handler({"query": f"select content from read_text('{path}')"})
    assert "(1 rows)" in sql.handler({"query": "select count(*) from t"})


def test_sql_tool_caps_rows_and_time(task):
    small = WikiTableQuestions(row_cap=2, timeout_s=0.3)
    sql = tools(small, task)["sql"]
    out = sql.handler({"query": "select row_id from t order by row_id"})
    assert out.splitlines()[1:3] == ["1", "2"]
    assert "only the first 2 rows" in out and "(2+ rows)" in out
    with pytest.raises(ToolError, match="ran past 0.3 s"):
        sql.handler({"query": "select count(*) from range(100000000) a, range(100000) b"})
    with pytest.raises(ToolError, match="query"):
        sql.handler({"sql": "select 1"})


def test_score(wtq, task):
    assert wtq.score(task, ["N"]).correct
    assert wtq.score(task, "n").correct  # a lone value is a list of one
    assert not wtq.score(task, ["N", "M"]).correct
    missing = wtq.score(task, None)
    assert not missing.correct and missing.detail == "no answer submitted"
    assert as_items({"answer": [3.0, "x", None]}) == ["3", "x"]
    assert as_items([]) is None


def test_registry_and_plugins(tmp_path, monkeypatch):
    assert {"wtq", "wikitablequestions"} <= set(environments.available())
    assert isinstance(environments.load("wtq"), WikiTableQuestions)
    with pytest.raises(LookupError, match="unknown environment 'nope'"):
        environments.load("nope")
    with pytest.raises(LookupError, match="cannot import"):
        environments.load("no_such_module:factory")
    # a module:factory spec, and the option the factory does not take is refused by name
    (tmp_path / "myenvs.py").write_text(
        "from pipeline.evaluate.wikitablequestions.env import WikiTableQuestions\n"
        "class Mine(WikiTableQuestions):\n    name = 'mine'\n"
        "def make():\n    return Mine()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert environments.load("myenvs:Mine").name == "mine"
    with pytest.raises(LookupError, match=r"does not take option\(s\) \['data'\]"):
        environments.load("myenvs:make", data="somewhere")
    monkeypatch.setattr(environments, "_REGISTRY", dict(environments._REGISTRY))
    environments.register("mine", WikiTableQuestions)
    assert "mine" in environments.available()


def test_data_folder_must_be_a_release(tmp_path):
    from pipeline.evaluate.wikitablequestions.data import DataError

    with pytest.raises(DataError, match="not a WikiTableQuestions folder"):
        WikiTableQuestions(tmp_path)
