"""The WikiTableQuestions environment: a question, its table in DuckDB, a SQL tool, a submit tool.

Tables live in one in-memory DuckDB per environment, each loaded once into a schema of its own;
an episode gets its own connection (a cursor) on which ``t`` is the question's table (the CSV,
with a ``row_id`` column keeping the page's row order). The ``sql`` tool runs one read-only query:
anything but a SELECT (WITH, FROM-first and DESCRIBE included) is refused, the connection is
locked down (``pipeline.sqlguard``: no file, network, extension or temporary folder; settings
locked), a query is interrupted after a timeout, and at most ``row_cap`` rows come back.
``submit`` ends the episode with the answer, scored by the official evaluator's rules
(``scorer.py``).
"""

from __future__ import annotations

import json
import threading
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import sqlguard
from pipeline.evaluate.env import Score, Task, Tool, ToolError
from pipeline.evaluate.wikitablequestions import data as wtq
from pipeline.evaluate.wikitablequestions import scorer
from pipeline.ids import digest

SYSTEM_PROMPT = """\
You answer questions about one table taken from a Wikipedia page.
The table is loaded in DuckDB as `t`; `row_id` numbers its rows in the page's order (1 = top).
Cells are text unless a whole column is numeric; empty cells are NULL.
Use the `sql` tool to look at the table and compute the answer (one SELECT per call; quote
unusual column names with double quotes). When you know the answer, call `submit` with it: a
list of strings, one item per value (most answers are a single value). Give the value itself
(a name, a number, a date as written in the table), not a sentence."""


@lru_cache(maxsize=256)
def _table(path: str) -> tuple[pl.DataFrame, dict[str, str]]:
    return wtq.read_table(Path(path))


def _render(rows: list[tuple], columns: list[str], more: bool, max_chars: int) -> str:
    def cell(v: Any) -> str:
        return "NULL" if v is None else " ".join(str(v).split())

    lines = ["\t".join(columns)] + ["\t".join(cell(v) for v in row) for row in rows]
    text = "\n".join(lines)
    if len(text) > max_chars:
        text = text[:max_chars] + f"\n... (output cut at {max_chars} characters)"
    elif more:
        text += f"\n... (only the first {len(rows)} rows shown; aggregate or add LIMIT)"
    return text + f"\n({len(rows)}{'+' if more else ''} rows)"


class WikiTableQuestions:
    """``--env wtq``: WikiTableQuestions (CC BY-SA 4.0); ``data`` is a release folder."""

    name = "wtq"
    system_prompt = SYSTEM_PROMPT

    def __init__(
        self,
        data: str | Path | None = None,
        *,
        row_cap: int = 100,
        timeout_s: float = 5.0,
        max_chars: int = 6000,
        preview_rows: int = 3,
    ):
        self.root = Path(data) if data else wtq.SAMPLE_DIR
        if not (self.root / "data").is_dir() or not (self.root / "csv").is_dir():
            raise wtq.DataError(f"{self.root} is not a WikiTableQuestions folder (data/ and csv/)")
        self.row_cap, self.timeout_s, self.max_chars = row_cap, timeout_s, max_chars
        self.preview_rows = preview_rows
        self._con: duckdb.DuckDBPyConnection | None = None
        self._loaded: set[str] = set()
        self._lock = threading.Lock()

    # -- tasks -----------------------------------------------------------------------------
    def tasks(self, split: str, limit: int | None = None, seed: int = 0) -> list[Task]:
        questions = wtq.sample(wtq.read_questions(wtq.split_file(self.root, split)), limit, seed)
        return [self._task(q, split) for q in questions]

    def _task(self, q: wtq.Question, split: str) -> Task:
        table_path = self.root / q.context
        if not table_path.is_file():
            raise wtq.DataError(f"question {q.id}: table {table_path} is missing")
        frame, originals = _table(str(table_path))
        return Task(
            task_id=q.id,
            prompt=f"Question: {q.utterance}\n\n{self._describe(frame, originals, q.context)}",
            gold=q.answers,
            meta={"split": split, "question": q.utterance, "table": q.context},
        )

    def _describe(self, frame: pl.DataFrame, originals: dict[str, str], context: str) -> str:
        lines = [f"Table `t` ({frame.height} rows, from {context}). Columns:"]
        for name, dtype in frame.schema.items():
            kind = "integer" if dtype == pl.Int64 else "number" if dtype == pl.Float64 else "text"
            if name == "row_id":
                lines.append("- row_id (integer): row number in the page's order")
                continue
            examples = (
                frame.get_column(name)
                .drop_nulls()
                .unique(maintain_order=True)
                .head(self.preview_rows)
            ).to_list()
            shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in examples)
            header = originals[name]
            label = f' header "{header}"' if header and header != name else ""
            lines.append(f"- {name} ({kind}{',' if label else ''}{label}): e.g. {shown}")
        return "\n".join(lines)

    # -- tools -----------------------------------------------------------------------------
    def _db(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                con = duckdb.connect(":memory:")
                for setting in (
                    "set threads = 1",
                    "set enable_progress_bar = false",
                    "set memory_limit = '1GB'",
                ):
                    con.execute(setting)
                sqlguard.lock(con)
                self._con = con
                weakref.finalize(self, con.close)  # closed before interpreter teardown too
            return self._con

    def _load(self, context: str) -> str:
        """The schema holding the table of ``context`` (loaded on first use)."""
        schema = "tbl_" + digest("wtq-table", context, length=16)
        con = self._db()
        with self._lock:
            if schema not in self._loaded:
                frame, _ = _table(str(self.root / context))
                loader = con.cursor()
                loader.register("_load", frame)
                loader.execute(f'create schema "{schema}"')
                loader.execute(f'create table "{schema}".data as select * from _load')
                loader.close()
                self._loaded.add(schema)
        return schema

    def tools(self, task: Task) -> list[Tool]:
        schema = self._load(task.meta["table"])
        con = self._db().cursor()  # a connection of its own: its temp view, its interrupts
        con.execute(f'create temp view t as select * from "{schema}".data')
        lock = threading.Lock()

        def sql(args: dict) -> str:
            query = args.get("query")
            if not isinstance(query, str) or not query.strip():
                raise ToolError("give the query as a string in `query`")
            with lock:
                return self._run_sql(con, query)

        def submit(args: dict) -> str:
            return "answer recorded"

        return [
            Tool(
                "sql",
                "Run one read-only DuckDB SELECT over the table `t` and see the rows "
                f"(at most {self.row_cap}).",
                {
                    "type": "object",
                    "properties": {"query": {"type": "string", "description": "one SELECT"}},
                    "required": ["query"],
                },
                sql,
            ),
            Tool(
                "submit",
                "Give the final answer; ends the task.",
                {
                    "type": "object",
                    "properties": {
                        "answer": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "the answer's values, one string each",
                        }
                    },
                    "required": ["answer"],
                },
                submit,
                submits=True,
            ),
        ]

    def _run_sql(self, con: duckdb.DuckDBPyConnection, query: str) -> str:
        try:
            sqlguard.check_select(query)
        except sqlguard.SqlRefused as exc:
            raise ToolError(str(exc)) from None
        timer = threading.Timer(self.timeout_s, con.interrupt)
        timer.start()
        try:
            cursor = con.execute(query)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(self.row_cap + 1)
        except duckdb.InterruptException:
            raise ToolError(f"the query ran past {self.timeout_s:g} s and was stopped") from None
        except duckdb.Error as exc:
            raise ToolError(str(exc).strip()) from None
        finally:
            timer.cancel()
        return _render(rows[: self.row_cap], columns, len(rows) > self.row_cap, self.max_chars)

    # -- scoring ---------------------------------------------------------------------------
    def score(self, task: Task, answer: Any) -> Score:
        predicted = as_items(answer)
        if predicted is None:
            return Score(False, 0.0, "no answer submitted")
        ok = scorer.score(list(task.gold), predicted)
        gold = " | ".join(task.gold)
        return Score(ok, 1.0 if ok else 0.0, f"gold {gold!r}, answered {' | '.join(predicted)!r}")


def as_items(answer: Any) -> list[str] | None:
    """The submitted answer as a list of strings (a lone value is a list of one)."""
    if answer is None:
        return None
    if isinstance(answer, dict) and "answer" in answer:
        answer = answer["answer"]
    if isinstance(answer, list | tuple):
        items = [_text(x) for x in answer if x is not None]
        return items or None
    return [_text(answer)]


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
