"""From a `Clustering` to clusters with ids, support, a medoid, and the support filter.

Reads the clustering and `lesson_facts`; produces the `clusters`-shaped frame (title and content
left for the summariser), `cluster_members`, and the `dropped` rows of the support filter.

- cluster_id: digest of the sorted member lesson ids (the same members give the same id in any
  run);
- support: `sql/consolidate_support.sql` (distinct trajectories, tasks, failures, successes,
  models, analysts; kept when distinct trajectories >= min_support);
- medoid: the distinct title closest to the cluster's centroid (the mean of its members'
  embeddings, each lesson counted once, so exact duplicates weigh in); ties go to the smaller
  lesson_id.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

from pipeline import sql
from pipeline.consolidate.dedupe import Clustering
from pipeline.ids import digest


@dataclass
class Clusters:
    table: pl.DataFrame  # one row per cluster: support, medoid, kept (no title/content yet)
    members: pl.DataFrame  # lesson_id, cluster_id, stage, representative_lesson_id, similarity
    dropped: pl.DataFrame  # lesson_id, cluster_id, stage, reason, node_id (support filter)


def _cluster_ids(members: pl.DataFrame) -> pl.DataFrame:
    grouped = members.group_by("root_rid").agg(
        key=pl.col("lesson_id").sort().str.join("\n"), n=pl.len()
    )
    ids = [digest("cluster", k) for k in grouped["key"].to_list()]
    return grouped.select("root_rid", cluster_id=pl.Series(ids, dtype=pl.String))


def medoids(c: Clustering, cluster_of_rid: np.ndarray, n_clusters: int) -> np.ndarray:
    """For each cluster index, the rid of its medoid title."""
    weight = c.reps["n_exact"].to_numpy().astype(np.float32)
    centroid = np.zeros((n_clusters, c.vectors.shape[1]), dtype=np.float32)
    np.add.at(centroid, cluster_of_rid, c.vectors * weight[:, None])
    score = np.einsum("ij,ij->i", c.vectors, centroid[cluster_of_rid])
    # best score per cluster; among equal scores the smallest rid (= smallest lesson_id)
    order = np.lexsort((np.arange(len(score)), -score, cluster_of_rid))
    first = np.ones(len(order), dtype=bool)
    first[1:] = cluster_of_rid[order][1:] != cluster_of_rid[order][:-1]
    best = np.empty(n_clusters, dtype=np.int64)
    best[cluster_of_rid[order][first]] = order[first]
    return best


def cluster_support(
    con: duckdb.DuckDBPyConnection, members: pl.DataFrame, facts: pl.DataFrame, min_support: int
) -> pl.DataFrame:
    """`sql/consolidate_support.sql` over the clusters of `members` (lesson_id, cluster_id)."""
    con.register("cluster_lessons", members.select("lesson_id", "cluster_id"))
    con.register("consolidation_lessons", facts)
    try:
        return sql.query(con, "consolidate_support", min_support=min_support)
    finally:
        con.unregister("cluster_lessons")
        con.unregister("consolidation_lessons")


def build_clusters(
    con: duckdb.DuckDBPyConnection, facts: pl.DataFrame, c: Clustering, min_support: int
) -> Clusters:
    ids = _cluster_ids(c.members).sort("cluster_id").with_row_index("cidx")
    members = c.members.join(ids, on="root_rid")
    rid_cluster = c.reps.select("rid", "root_rid").join(ids, on="root_rid").sort("rid")
    best = medoids(c, rid_cluster["cidx"].to_numpy().astype(np.int64), ids.height)
    medoid = ids.select(
        "cluster_id", medoid_lesson_id=c.reps["lesson_id"].gather(best), medoid_rid=pl.Series(best)
    )

    table = (
        cluster_support(con, members, facts, min_support)
        .join(medoid, on="cluster_id")
        .sort("cluster_id")
    )

    out_members = members.select(
        "lesson_id", "cluster_id", "stage", "representative_lesson_id", "similarity"
    ).sort("lesson_id")
    weak = table.filter(~pl.col("kept")).select("cluster_id", "n_trajectories")
    dropped = (
        out_members.join(weak, on="cluster_id")
        .select(
            "lesson_id",
            "cluster_id",
            stage=pl.lit("support"),
            reason=pl.format(
                "support: seen in {} distinct trajectory(ies), below --min-support {}",
                pl.col("n_trajectories"),
                pl.lit(min_support),
            ),
            node_id=pl.lit(None, pl.String),
        )
        .sort("lesson_id")
    )
    return Clusters(table=table, members=out_members, dropped=dropped)
