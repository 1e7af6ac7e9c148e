"""One consolidated lesson per cluster: the summariser interface and its offline implementation.

A summariser reads one row per cluster (support, medoid, and for model summarisers a sample of
members) and returns one row per cluster: `title`, `content`, `cited_lesson_ids`, `summariser`
(the model that wrote it, or 'offline'), `fallback` (why a model's summary was not used: the
extractive one stands in) and `llm_call_key`. The caller checks that every cited id is a member
of its cluster (`sql/audit_consolidate_cited_non_members.sql`); anything else is a fault.

- `ExtractiveSummariser` (offline, the default): the medoid's own title and content, citing the
  medoid. Nothing is generated, so nothing can be invented; the members' support travels with it.
- `ModelSummariser` (`model_summarise.py`, `prompts/summarise.md`): receives the `sample_size`
  members nearest the centroid and must cite the ones it draws on.
"""

from __future__ import annotations

from typing import Protocol

import duckdb
import numpy as np
import polars as pl

from pipeline import sql

SUMMARY_COLUMNS = {
    "cluster_id": pl.String,
    "title": pl.String,
    "content": pl.String,
    "cited_lesson_ids": pl.List(pl.String),
    "summariser": pl.String,
    "fallback": pl.String,
    "llm_call_key": pl.String,
}


class CitationError(AssertionError):
    """A consolidated lesson cites lessons that are not members of its cluster."""


class Summariser(Protocol):
    name: str  # 'offline' or the model name
    prompt_version: str
    sample_size: int  # members per cluster it needs to read (0: the medoid is enough)

    def summarise(self, clusters: pl.DataFrame, samples: pl.DataFrame) -> pl.DataFrame:
        """clusters: cluster_id, target_section, kind, medoid_lesson_id, medoid_title,
        medoid_content, n_* support; samples: cluster_id, lesson_id, title, content, similarity.
        Returns SUMMARY_COLUMNS, one row per input cluster."""
        ...


class ExtractiveSummariser:
    name = "offline"
    prompt_version = "extractive-1"
    sample_size = 0

    def summarise(self, clusters: pl.DataFrame, samples: pl.DataFrame) -> pl.DataFrame:
        return clusters.select(
            "cluster_id",
            title=pl.col("medoid_title"),
            content=pl.col("medoid_content"),
            cited_lesson_ids=pl.concat_list(pl.col("medoid_lesson_id")),
            summariser=pl.lit("offline"),
            fallback=pl.lit(None, pl.String),
            llm_call_key=pl.lit(None, pl.String),
        )


def samples_for(
    clusters: pl.DataFrame,
    members: pl.DataFrame,
    facts: pl.DataFrame,
    vectors: np.ndarray,
    rid_of: pl.DataFrame,
    k: int,
) -> pl.DataFrame:
    """Up to `k` distinct-title members per cluster, nearest the medoid first."""
    if k <= 0:
        return pl.DataFrame(
            schema={
                "cluster_id": pl.String,
                "lesson_id": pl.String,
                "title": pl.String,
                "content": pl.String,
                "similarity": pl.Float64,
            }
        )
    reps = members.filter(pl.col("stage") != "exact").join(rid_of, on="lesson_id")
    reps = reps.join(clusters.select("cluster_id", "medoid_rid"), on="cluster_id")
    sim = np.einsum(
        "ij,ij->i", vectors[reps["rid"].to_numpy()], vectors[reps["medoid_rid"].to_numpy()]
    )
    return (
        reps.with_columns(similarity=pl.Series(sim, dtype=pl.Float64))
        .sort(["cluster_id", "similarity", "lesson_id"], descending=[False, True, False])
        .group_by("cluster_id", maintain_order=True)
        .head(k)
        .join(facts.select("lesson_id", "title", "content"), on="lesson_id")
        .select("cluster_id", "lesson_id", "title", "content", "similarity")
        .sort(["cluster_id", "similarity", "lesson_id"], descending=[False, True, False])
    )


def check_citations(
    con: duckdb.DuckDBPyConnection, summaries: pl.DataFrame, members: pl.DataFrame
) -> pl.DataFrame:
    """Rows (cluster_id, lesson_id) where a summary cites a non-member; empty when all is well."""
    con.register("summaries", summaries.select("cluster_id", "cited_lesson_ids"))
    con.register("cluster_lessons", members.select("lesson_id", "cluster_id"))
    try:
        return sql.query(con, "audit_consolidate_cited_non_members")
    finally:
        con.unregister("summaries")
        con.unregister("cluster_lessons")


def summarise_clusters(
    con: duckdb.DuckDBPyConnection,
    summariser: Summariser,
    table: pl.DataFrame,
    members: pl.DataFrame,
    facts: pl.DataFrame,
    samples: pl.DataFrame,
) -> pl.DataFrame:
    """Summaries of every cluster; citations checked. Raises CitationError on a non-member."""
    medoid = facts.select(
        medoid_lesson_id="lesson_id", medoid_title="title", medoid_content="content"
    )
    clusters = table.join(medoid, on="medoid_lesson_id").sort("cluster_id")
    out = summariser.summarise(clusters, samples).select(
        [pl.col(c).cast(t) for c, t in SUMMARY_COLUMNS.items()]
    )
    missing = set(clusters["cluster_id"]) - set(out["cluster_id"])
    if missing:
        raise CitationError(f"summariser returned no row for {len(missing)} cluster(s)")
    bad = check_citations(con, out, members)
    if bad.height:
        raise CitationError(
            f"{bad.height} citation(s) of non-members, e.g. cluster {bad['cluster_id'][0]} "
            f"cites {bad['lesson_id'][0]}"
        )
    return out.sort("cluster_id")
