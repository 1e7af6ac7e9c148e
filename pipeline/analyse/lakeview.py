"""Read-only access to the whole lake for the agentic analyst's tools.

Reads `trajectories` and `steps` (and the `tool_calls` view over them); writes nothing. Three
services, shared by every conversation of a run:

- `query(sql)`: one model-written SQL statement over the pool. Only a single SELECT (or
  WITH ... SELECT) passes (`pipeline.sqlguard`); it runs on a connection locked down by
  `sqlguard.lock`: no file beyond the lake's `trajectories` and `steps` folders, no temporary
  folder, no extension, no setting changes; with a row cap and a time limit (the query is
  interrupted past it). Each query gets its own cursor, so conversations can query at once. On a local lake
  DuckDB reads the Parquet parts itself (``allowed_directories``: the two table folders only,
  2-10x faster than an Arrow scan, and off the GIL); on an object store it scans the pyarrow
  datasets, registered per cursor.
- `contrast(row, which)`: another run of the same task that succeeded (`sql/analyse_contrast_runs`).
- `gold_roles(source)`: which tools the pool shows to be read-only or writing, learned as the
  miner learns them (computed once, on first use).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import duckdb
import polars as pl

from pipeline import schemas, sql, sqlguard
from pipeline.analyse.miner.pool import gold_tool_roles
from pipeline.lake import Lake
from pipeline.llm.tools import ToolError

TABLES = ("trajectories", "steps")
ROW_CAP = 50
TIME_LIMIT_S = 5.0
CELL_CHARS = 300
RESULT_CHARS = 6000
COLUMNS = {
    "trajectories": "trajectory_id, source, task_id, model, agent, outcome, reward, n_steps, "
    "meta (JSON; meta->'grader' holds the grader's view)",
    "steps": "trajectory_id, source, step_idx, role, kind (message/tool_call/tool_result), "
    "content, tool_name, tool_args (JSON), call_step_idx, is_error",
    "tool_calls": "trajectory_id, source, task_id, outcome, call_step_idx, result_step_idx, "
    "tool_name, tool_args, call_content, result_content, is_error (one row per call with its "
    "result)",
}


class QueryRefused(ToolError):
    """A statement the pool query does not run, with the reason the model can act on."""


def check_select(text: str) -> None:
    """Raise `QueryRefused` unless `text` is exactly one SELECT (or WITH ... SELECT)."""
    try:
        sqlguard.check_select(text)
    except sqlguard.SqlRefused as exc:
        raise QueryRefused(str(exc)) from None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _cell(value: Any) -> str:
    text = "null" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 3] + "..."


class LakeView:
    def __init__(
        self,
        lake: Lake,
        *,
        time_limit_s: float = TIME_LIMIT_S,
        row_cap: int = ROW_CAP,
        native: bool | None = None,
    ):
        self.lake = lake
        self.time_limit_s = time_limit_s
        self.row_cap = row_cap
        self.native = lake.is_local if native is None else native
        self.db = duckdb.connect(":memory:")
        self.db.execute("set memory_limit = '2GB'")
        self.db.execute("set enable_progress_bar = false")
        view = sql.load("views_tool_calls")
        self.datasets: dict[str, Any] = {}
        folders = [lake.table_dir(name) for name in TABLES] if self.native else []
        if self.native:
            for name, folder in zip(TABLES, folders, strict=True):
                if lake.exists(name):
                    self.db.execute(
                        f"create view {name} as select * from read_parquet("
                        f"{_quote(folder + '/**/part-*.parquet')}, hive_partitioning = true, "
                        "union_by_name = true)"
                    )
                else:
                    empty = schemas.arrow_schema(name, with_partitions=True).empty_table()
                    self.db.register("_empty", empty)
                    self.db.execute(f"create table {name} as select * from _empty")
                    self.db.unregister("_empty")
            self.db.execute(view)
            self._view = None
        else:
            self.datasets = {name: lake.dataset(name) for name in TABLES}
            self._view = view.replace("create or replace view", "create or replace temp view", 1)
        sqlguard.lock(self.db, readable=folders)
        self._roles: tuple[dict[str, set[str]], dict[str, set[str]]] | None = None
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor that sees the lake tables and the tool_calls view (registered objects are
        per cursor, so over datasets every query registers its own)."""
        cur = self.db.cursor()
        if not self.native:
            for name, dataset in self.datasets.items():
                cur.register(name, dataset)
            cur.execute(self._view)
        return cur

    def close(self) -> None:
        self.db.close()

    # -- the model's SQL ---------------------------------------------------------------------
    def query(self, text: str) -> str:
        """The result as a small text table; raises `QueryRefused` with a reason otherwise."""
        check_select(text)
        cur = self.cursor()
        timer = threading.Timer(self.time_limit_s, cur.interrupt)
        timer.start()
        try:
            rel = cur.sql(text)
            if rel is None:
                raise QueryRefused("the statement returns no rows")
            columns = rel.columns
            rows = rel.limit(self.row_cap + 1).fetchall()
        except duckdb.InterruptException:
            raise QueryRefused(
                f"the query ran past {self.time_limit_s:g} s and was stopped: narrow it "
                "(filter by source or task, aggregate, add a LIMIT)"
            ) from None
        except duckdb.Error as exc:
            raise QueryRefused(f"{type(exc).__name__}: {sqlguard.first_line(exc)}") from None
        finally:
            timer.cancel()
            cur.close()
        more = len(rows) > self.row_cap
        rows = rows[: self.row_cap]
        lines = [" | ".join(columns)]
        used = len(lines[0])
        for i, row in enumerate(rows):
            line = " | ".join(_cell(v) for v in row)
            if used + len(line) > RESULT_CHARS:
                lines.append(
                    f"[... {len(rows) - i} more rows cut to fit: aggregate or select less]"
                )
                break
            lines.append(line)
            used += len(line) + 1
        if more:
            lines.append(
                f"[only the first {self.row_cap} rows are shown: aggregate or add a LIMIT]"
            )
        if not rows:
            lines.append("(no rows)")
        return "\n".join(lines)

    # -- other runs --------------------------------------------------------------------------
    def contrast(self, row: Mapping[str, Any]) -> tuple[pl.DataFrame, int]:
        """(successful runs of the same task but this one, shortest first; runs of the task)."""
        cur = self.cursor()
        try:
            found = sql.query(
                cur,
                "analyse_contrast_runs",
                source=row["source"],
                task_id=row["task_id"],
                trajectory_id=row["trajectory_id"],
            )
            if found.height:
                return found, int(found.item(0, "n_task_runs"))
            total = cur.sql(
                "select count(*) from trajectories where source = $s and task_id = $t",
                params={"s": row["source"], "t": row["task_id"]},
            ).fetchall()
            return found, int(total[0][0])
        finally:
            cur.close()

    def steps_of(self, trajectory_id: str, source: str) -> pl.DataFrame:
        keep = (pl.col("source") == source) & (pl.col("trajectory_id") == trajectory_id)
        return self.lake.scan("steps").filter(keep).collect().sort("step_idx")

    def gold_roles(self, source: str) -> tuple[set[str], set[str]]:
        """(read-only tools, write tools) of a source, learned over the whole pool once."""
        with self._lock:
            if self._roles is None:
                cur = self.cursor()
                try:
                    self._roles = gold_tool_roles(cur)
                finally:
                    cur.close()
        read_only, write = self._roles
        return read_only.get(source, set()), write.get(source, set())
