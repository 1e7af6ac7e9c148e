"""What a consolidation mode hands to the skill writer: tables so far, statements, the patch.

Both modes (parallel merge tree, sequential batches) produce a `MergeOutcome`; `run.py` applies its
patch to the skill, derives provenance and writes every table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from pipeline.consolidate.conflicts import Item
from pipeline.skill.patch import PatchOp

CLUSTER_COLUMNS = [
    "cluster_id",
    "target_section",
    "kind",
    "medoid_lesson_id",
    "title",
    "content",
    "cited_lesson_ids",
    "summariser",
    "summary_fallback",
    "summary_call_key",
    "n_lessons",
    "n_trajectories",
    "n_tasks",
    "n_failures",
    "n_successes",
    "n_models",
    "n_analysts",
    "kept",
]
DROPPED_COLUMNS = {
    "lesson_id": pl.String,
    "cluster_id": pl.String,
    "stage": pl.String,
    "reason": pl.String,
    "node_id": pl.String,
}


@dataclass
class MergeOutcome:
    """The merge's result in either mode: clusters, merge tree, final statements and patch."""

    clusters: pl.DataFrame  # CLUSTER_COLUMNS
    members: pl.DataFrame  # lesson_id, cluster_id, stage, representative_lesson_id, similarity
    dropped: pl.DataFrame  # DROPPED_COLUMNS (support, summary, merge so far)
    nodes: list[dict]  # merge_nodes rows without run_id
    edges: list[dict]  # merge_edges rows without run_id
    items: list[Item]  # the final statements
    item_node: dict[str, str]  # statement -> merge node that emitted it
    patch: list[PatchOp]  # the final patch
    n_ops: int  # edits made (sequential: over every batch)
    n_conflicts: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    n_pairs: dict[str, int] = field(default_factory=dict)


def empty_dropped() -> pl.DataFrame:
    return pl.DataFrame(schema=DROPPED_COLUMNS)


def lesson_drops(
    members: pl.DataFrame, cluster_reasons: dict[str, tuple[str | None, str]], stage: str
) -> pl.DataFrame:
    """Every member lesson of the given clusters, dropped at `stage` for the cluster's reason."""
    if not cluster_reasons:
        return empty_dropped()
    why = pl.DataFrame(
        {
            "cluster_id": list(cluster_reasons),
            "node_id": [v[0] for v in cluster_reasons.values()],
            "reason": [v[1] for v in cluster_reasons.values()],
        },
        schema={"cluster_id": pl.String, "node_id": pl.String, "reason": pl.String},
    )
    return (
        members.join(why, on="cluster_id")
        .select("lesson_id", "cluster_id", stage=pl.lit(stage), reason="reason", node_id="node_id")
        .sort("lesson_id")
    )
