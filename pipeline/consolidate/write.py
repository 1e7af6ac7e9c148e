"""Apply the final patch to the starting skill and derive `patch_ops`, `skill_lines`, drops.

Reads a `MergeOutcome` and the starting `SkillFolder` (a copy of the base skill, or an empty one);
applies the patch by code (`pipeline.skill.patch`), records every op's status (an anchor that does
not match is `anchor_missing`, logged, never skipped silently), reads provenance off the patched
files line by line and joins it with the clusters and lessons behind each statement
(`sql/skill_lines_support.sql`). Statements none of whose lines reached the skill are dropped at
stage `apply`, with the ops' messages as the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from pipeline import schemas, sql
from pipeline.consolidate.outcome import MergeOutcome, lesson_drops
from pipeline.lake import Lake
from pipeline.skill.folder import SkillFolder
from pipeline.skill.patch import OpResult, apply_patch
from pipeline.skill.provenance import line_rows


@dataclass
class Written:
    folder: SkillFolder
    results: list[OpResult]
    patch_ops: pl.DataFrame  # without run_id
    skill_lines: pl.DataFrame  # without run_id
    dropped: pl.DataFrame  # apply-stage drops


def patch_rows(outcome: MergeOutcome, results: list[OpResult]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "op_id": op.op_id,
                "seq": seq,
                "op": op.op,
                "file": op.file,
                "section": op.section,
                "anchor": op.anchor,
                "text": op.text,
                "cluster_ids": list(op.cluster_ids),
                "status": res.status,
                "message": res.message,
            }
            for seq, (op, res) in enumerate(zip(outcome.patch, results, strict=True))
        ],
        schema={
            "op_id": pl.String,
            "seq": pl.Int64,
            "op": pl.String,
            "file": pl.String,
            "section": pl.String,
            "anchor": pl.String,
            "text": pl.String,
            "cluster_ids": pl.List(pl.String),
            "status": pl.String,
            "message": pl.String,
        },
    )


def apply_outcome(
    con: duckdb.DuckDBPyConnection,
    start: SkillFolder,
    outcome: MergeOutcome,
    facts: pl.DataFrame,
) -> Written:
    results = apply_patch(start, outcome.patch)
    lines = line_rows(start)

    items = {it.item_id: it for it in outcome.items}
    item_clusters = pl.DataFrame(
        [(i, c) for i, it in items.items() for c in it.cluster_ids],
        schema={"item_id": pl.String, "cluster_id": pl.String},
        orient="row",
    )
    con.register("item_clusters", item_clusters)
    con.register("cluster_lessons", outcome.members.select("lesson_id", "cluster_id"))
    con.register("consolidation_lessons", facts)
    try:
        support = sql.query(con, "skill_lines_support")
    finally:
        for name in ("item_clusters", "cluster_lessons", "consolidation_lessons"):
            con.unregister(name)
    clusters_of = pl.DataFrame(
        {
            "item_id": list(items),
            "cluster_ids": [sorted(it.cluster_ids) for it in items.values()],
            "merge_node_id": [outcome.item_node.get(i) for i in items],
        },
        schema={
            "item_id": pl.String,
            "cluster_ids": pl.List(pl.String),
            "merge_node_id": pl.String,
        },
    )
    counts = ["n_trajectories", "n_tasks", "n_failures", "n_successes"]
    skill_lines = (
        lines.join(clusters_of, on="item_id", how="left")
        .join(support, on="item_id", how="left")
        .with_columns(
            pl.col("cluster_ids").fill_null(pl.lit([], pl.List(pl.String))),
            pl.col("lesson_ids").fill_null(pl.lit([], pl.List(pl.String))),
            *[pl.col(c).fill_null(0) for c in counts],
        )
        .select(
            "file",
            "line_no",
            "section",
            "text",
            "origin",
            "cluster_ids",
            "lesson_ids",
            "merge_node_id",
            *counts,
            "item_id",
        )
        .sort("file", "line_no")
    )

    reached = set(lines["item_id"].drop_nulls().to_list())
    why: dict[str, list[str]] = {}
    for op, res in zip(outcome.patch, results, strict=True):
        if res.status != "applied" and op.item:
            why.setdefault(op.item, []).append(f"{op.op} {res.status}: {res.message}")
    lost = {
        c: (outcome.item_node.get(i), "apply: " + "; ".join(why.get(i, ["no line written"])))
        for i, it in items.items()
        if i not in reached
        for c in it.cluster_ids
    }
    return Written(
        folder=start,
        results=results,
        patch_ops=patch_rows(outcome, results),
        skill_lines=skill_lines,
        dropped=lesson_drops(outcome.members, lost, "apply"),
    )


def unaccounted_lessons(
    con: duckdb.DuckDBPyConnection,
    facts: pl.DataFrame,
    skill_lines: pl.DataFrame,
    dropped: pl.DataFrame,
) -> pl.DataFrame:
    """Lessons neither behind a skill line nor dropped once (must be empty)."""
    con.register("consolidation_lessons", facts)
    con.register("run_skill_lines", skill_lines.select("lesson_ids"))
    con.register("run_dropped", dropped.select("lesson_id"))
    try:
        return sql.query(con, "audit_consolidate_unaccounted_lessons")
    finally:
        for n in ("consolidation_lessons", "run_skill_lines", "run_dropped"):
            con.unregister(n)


TABLES = ("clusters", "cluster_members", "merge_nodes", "merge_edges", "patch_ops",
          "skill_lines", "dropped", "consolidation_scope", "consolidations")  # fmt: skip


def write_tables(
    lake: Lake,
    run_id: str,
    outcome: MergeOutcome,
    written: Written,
    dropped: pl.DataFrame,
    scope: pl.DataFrame,
    row: dict,
) -> None:
    """Every consolidation table's rows for `run_id`, replacing that run's earlier rows."""

    def frame(rows: pl.DataFrame | list[dict], table: str) -> pl.DataFrame:
        if not isinstance(rows, pl.DataFrame):
            columns = schemas.table(table).columns
            rows = pl.DataFrame(rows, schema={c: d for c, d in columns.items() if c != "run_id"})
        return rows.with_columns(run_id=pl.lit(run_id))

    frames = {
        "clusters": frame(outcome.clusters, "clusters"),
        "cluster_members": frame(outcome.members, "cluster_members"),
        "merge_nodes": frame(outcome.nodes, "merge_nodes"),
        "merge_edges": frame(outcome.edges, "merge_edges"),
        "patch_ops": frame(written.patch_ops, "patch_ops"),
        "skill_lines": frame(written.skill_lines, "skill_lines"),
        "dropped": frame(dropped, "dropped"),
        "consolidation_scope": frame(scope, "consolidation_scope"),
        "consolidations": frame([row], "consolidations"),
    }
    lake.ensure()
    for table in TABLES:  # consolidations last: its row says the run is complete
        lake.replace_partition(table, frames[table], {"run_id": run_id})
