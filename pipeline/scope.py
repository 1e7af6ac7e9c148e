"""A consolidation's scope: the runs it was built from, which coverage counts.

Recorded by consolidation in `consolidation_scope` when it runs, so the scope of a run stays what
it was: runs ingested later do not join it. How a run's scope is found from its --where:
    where     the --where, applied to the run columns of `RUN_FACTS`, selects it
    sources   the --where names lesson columns (kind, rule, ...): every run of the sources the
              consolidation read lessons from
    lake      no --where: every run of the lake
Runs consolidated before scopes were recorded get the same rules applied to today's lake
(`sql/views_run_scope.sql`). Reads `trajectories` through the connection given; writes nothing.
"""

from __future__ import annotations

import duckdb
import polars as pl

# Columns a consolidation's --where may name that are columns of its runs (the rest, e.g. kind or
# rule, are lesson columns).
RUN_FACTS = (
    "select trajectory_id, source, task_id, outcome, model, model as run_model, agent, reward "
    "from trajectories"
)


def scope_rows(
    con: duckdb.DuckDBPyConnection, where: str | None, sources: list[str]
) -> pl.DataFrame:
    """(trajectory_id, scope) of every run in the scope of a consolidation with this --where that
    read lessons from `sources`."""
    if where is None or not where.strip():
        return con.sql(f"select trajectory_id, 'lake' as scope from ({RUN_FACTS})").pl()
    try:
        # The condition is the user's own SQL over their own lake, already run on its lessons.
        return con.sql(
            f"select trajectory_id, 'where' as scope from ({RUN_FACTS}) as facts where ({where}\n)"
        ).pl()
    except duckdb.Error:  # it names lesson columns
        return con.sql(
            f"select trajectory_id, 'sources' as scope from ({RUN_FACTS}) as facts "
            "where list_contains($sources, source)",
            params={"sources": sources},
        ).pl()
