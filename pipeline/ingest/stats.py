"""Counts over the lake: the `stats` command's queries (``sql/stats_*.sql``), run with DuckDB.

Reads trajectories, steps, ingest_files and ingest_errors; writes nothing.
"""

from __future__ import annotations

import polars as pl

from pipeline import sql
from pipeline.lake import Lake

# Section name -> (SQL file, title shown above its table).
SECTIONS = {
    "sources": ("stats_sources", "Sources"),
    "outcomes": ("stats_outcomes", "Outcomes"),
    "models": ("stats_runs_by", "Models"),
    "tasks": ("stats_runs_by", "Tasks with the most runs"),
    "steps": ("stats_steps", "Steps by role and kind"),
    "tools": ("stats_tools", "Tools (error rate = results flagged as errors / results)"),
    "files": ("stats_ingest", "Raw files (latest ingest)"),
}
# Parameters of a section's query besides $source (the tasks' $limit is `top_tasks`).
PARAMS = {"models": {"by": "model", "limit": None}, "tasks": {"by": "task_id"}}


def lake_stats(
    lake: Lake, *, source: str | None = None, top_tasks: int = 20
) -> dict[str, pl.DataFrame]:
    """Every stats section as a polars frame, in the order of SECTIONS."""
    con = sql.connect(lake)
    try:
        out = {}
        for name, (query, _) in SECTIONS.items():
            params = {"source": source, **PARAMS.get(name, {})}
            if name == "tasks":
                params["limit"] = top_tasks
            out[name] = sql.query(con, query, **params)
        return out
    finally:
        con.close()
