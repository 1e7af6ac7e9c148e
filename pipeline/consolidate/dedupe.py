"""Dedupe and cluster lessons in three stages, each on the representatives of the one before.

1. exact: normalised titles within a block (`sql/consolidate_exact_groups.sql`);
2. near: MinHash LSH + exact Jaccard over the exact representatives
   (`sql/consolidate_near_pairs.sql`), connected components by union-find;
3. semantic: embeddings of the near representatives, random-hyperplane LSH band join + cosine
   verification (`lsh.py`), connected components again.

A block is the lesson's target section plus its polarity, so lessons of different sections, and a
lesson and its negation, never share a cluster. Reads the `lesson_facts` frame; returns a
`Clustering`: one row per lesson with its final cluster root, the stage that joined it to its
representative and how similar they are, plus the embeddings of every distinct title.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from pipeline import sql
from pipeline.consolidate.lsh import pair_cosines, semantic_pairs
from pipeline.consolidate.settings import ANALYSES, SettingsError, Thresholds
from pipeline.consolidate.unionfind import components
from pipeline.errors import UserError
from pipeline.llm.embed import Embedder


@dataclass
class Clustering:
    members: pl.DataFrame  # lesson_id, root_rid, stage, representative_lesson_id, similarity, rid
    reps: pl.DataFrame  # one row per distinct title: rid, lesson_id, n_exact, near_rid, root_rid
    vectors: np.ndarray  # embeddings of reps, row = rid
    n_pairs: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


FACT_COLUMNS = ("lesson_id, trajectory_id, kind, title, content, section, tool_name, rule, op, "
                "analyst, confidence, created_at, source, task_id, outcome, run_model, config_id, "
                "latest_config")  # fmt: skip


class FilterError(UserError, ValueError):
    """The --where filter is not a valid SQL expression over the lesson facts."""


def lesson_facts(
    con: duckdb.DuckDBPyConnection, where: str | None = None, analyses: str = "all"
) -> pl.DataFrame:
    """Lessons joined with their runs and keyed for blocking (needs lessons, trajectories,
    analyses), optionally only those matching `where`, a SQL filter over FACT_COLUMNS.
    `analyses="latest"` keeps, for each run and analyst, only the lessons of the analyst's
    latest configuration (`latest_config` of the lesson_facts view, which this defines on `con`:
    the user's view and consolidation read one definition)."""
    if analyses not in ANALYSES:
        raise SettingsError(f"analyses must be one of {ANALYSES}, got {analyses!r}")
    con.execute(sql.load("views_lesson_facts"))
    facts = sql.query(con, "consolidate_lesson_facts", latest_only=analyses == "latest")
    if not where or not where.strip():
        return facts
    if ";" in where:
        raise FilterError(f"--where must be one filter expression, got {where!r}")
    con.register("all_lesson_facts", facts)
    try:
        # The filter is the user's own SQL over their own lake.
        return con.sql(f"select * from all_lesson_facts where ({where}) order by lesson_id").pl()
    except duckdb.Error as exc:
        raise FilterError(
            f"--where {where!r} is not a valid filter on lessons ({exc}); columns: {FACT_COLUMNS}"
        ) from None
    finally:
        con.unregister("all_lesson_facts")


def prefilter(t: Thresholds) -> float:
    """Share of equal MinHash values a candidate needs before exact verification: three
    standard errors of the estimate below the threshold, so true pairs are not let go."""
    n = t.minhash_bands * t.minhash_rows
    se = (t.near_threshold * (1 - t.near_threshold) / n) ** 0.5
    return max(0.0, t.near_threshold - 3 * max(se, 0.05))


def near_pairs(
    con: duckdb.DuckDBPyConnection, docs: pl.DataFrame, t: Thresholds
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    con.register("near_docs", docs)
    try:
        pairs = sql.query(
            con,
            "consolidate_near_pairs",
            shingle=t.shingle_size,
            bands=t.minhash_bands,
            rows=t.minhash_rows,
            max_bucket=t.max_bucket,
            pivots=t.bucket_pivots,
            prefilter=prefilter(t),
            threshold=t.near_threshold,
        )
    finally:
        con.unregister("near_docs")
    return pairs["a"].to_numpy(), pairs["b"].to_numpy(), pairs["similarity"].to_numpy()


def _jaccard_to(con: duckdb.DuckDBPyConnection, reps: pl.DataFrame, shingle: int) -> np.ndarray:
    """Exact Jaccard between each title and its near root's title (1.0 for roots)."""
    con.register("near_links", reps.select("rid", "norm_title", "near_rid"))
    try:
        got = con.sql(
            """
            with s as (
                select rid, list_distinct(list_transform(
                    range(1, greatest(length(norm_title) + 2 - $k + 2, 2)),
                    lambda i: hash(substr(' ' || norm_title || ' ', i, $k)))) as hs
                from near_links
            )
            select l.rid, len(list_filter(a.hs, lambda x: list_contains(b.hs, x)))
                / (len(a.hs) + len(b.hs) - len(list_filter(a.hs, lambda x: list_contains(b.hs, x))))
                as j
            from near_links l join s a on a.rid = l.rid join s b on b.rid = l.near_rid
            order by l.rid
            """,
            params={"k": shingle},
        ).pl()
    finally:
        con.unregister("near_links")
    return got["j"].to_numpy()


def cluster_lessons(
    con: duckdb.DuckDBPyConnection, facts: pl.DataFrame, embedder: Embedder, t: Thresholds
) -> Clustering:
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    con.register("consolidation_lessons", facts)
    exact = sql.query(con, "consolidate_exact_groups")
    seconds["exact"] = time.perf_counter() - clock

    # one row per distinct title (exact representative); rid is its position, by lesson_id
    reps = (
        facts.join(exact, on="lesson_id")
        .filter(pl.col("lesson_id") == pl.col("exact_rep_id"))
        .sort("lesson_id")
        .with_row_index("rid")
        .with_columns(pl.col("rid").cast(pl.Int64))
        .select(
            "rid", "lesson_id", "n_exact", "block", "norm_title", "title", "assigns", "assign_names"
        )
    )
    clock = time.perf_counter()
    a, b, _ = near_pairs(
        con, reps.select("rid", "block", "norm_title", "assigns", "assign_names"), t
    )
    near_root = components(reps.height, a, b)
    reps = reps.with_columns(near_rid=pl.Series(near_root, dtype=pl.Int64))
    near_sim = _jaccard_to(con, reps, t.shingle_size)
    seconds["near"] = time.perf_counter() - clock

    clock = time.perf_counter()
    vectors = embedder.embed(reps["title"].to_list())
    seconds["embed"] = time.perf_counter() - clock

    clock = time.perf_counter()
    heads = reps.filter(pl.col("rid") == pl.col("near_rid"))  # near representatives
    head_rids = heads["rid"].to_numpy()
    docs = heads.with_row_index("hid").select(
        pl.col("hid").cast(pl.Int64).alias("rid"), "block", "assigns", "assign_names"
    )
    sa, sb, _ = semantic_pairs(
        con,
        docs,
        vectors[head_rids],
        threshold=t.semantic_threshold,
        bands=t.lsh_bands,
        rows=t.lsh_rows,
        max_bucket=t.max_bucket,
        pivots=t.bucket_pivots,
        seed=t.seed,
    )
    head_root = head_rids[components(len(head_rids), sa, sb)]
    lookup = np.arange(reps.height, dtype=np.int64)
    lookup[head_rids] = head_root
    root = lookup[near_root]
    semantic_sim = pair_cosines(vectors, near_root, root)
    reps = reps.with_columns(root_rid=pl.Series(root, dtype=pl.Int64))
    seconds["semantic"] = time.perf_counter() - clock

    members = _members(facts, exact, reps, near_sim, semantic_sim)
    con.unregister("consolidation_lessons")
    return Clustering(
        members=members,
        reps=reps.drop("assigns", "assign_names"),
        vectors=vectors,
        n_pairs={"near": int(a.size), "semantic": int(sa.size)},
        seconds=seconds,
    )


def _members(
    facts: pl.DataFrame,
    exact: pl.DataFrame,
    reps: pl.DataFrame,
    near_sim: np.ndarray,
    semantic_sim: np.ndarray,
) -> pl.DataFrame:
    """Per lesson: the stage that joined it to its representative, and how similar they are."""
    ids = reps["lesson_id"]
    links = reps.select(
        "rid",
        "root_rid",
        pl.col("lesson_id").alias("exact_rep_id"),
        near_id=ids.gather(reps["near_rid"]),
        root_id=ids.gather(reps["root_rid"]),
        is_near_head=pl.col("rid") == pl.col("near_rid"),
        near_sim=pl.Series(near_sim, dtype=pl.Float64),
        semantic_sim=pl.Series(semantic_sim, dtype=pl.Float64),
    )
    size = links.group_by("root_rid").agg(n_reps=pl.len())
    out = (
        exact.join(links, on="exact_rep_id", how="left")
        .join(size, on="root_rid", how="left")
        .join(exact.group_by("exact_rep_id").agg(n_exact=pl.len()), on="exact_rep_id")
        .with_columns(
            pl.when(pl.col("lesson_id") != pl.col("exact_rep_id"))
            .then(pl.struct(stage=pl.lit("exact"), rep=pl.col("exact_rep_id"), sim=pl.lit(1.0)))
            .when(~pl.col("is_near_head"))
            .then(pl.struct(stage=pl.lit("near"), rep=pl.col("near_id"), sim=pl.col("near_sim")))
            .when(pl.col("rid") != pl.col("root_rid"))
            .then(
                pl.struct(
                    stage=pl.lit("semantic"), rep=pl.col("root_id"), sim=pl.col("semantic_sim")
                )
            )
            .when((pl.col("n_reps") > 1) | (pl.col("n_exact") > 1))
            .then(
                pl.struct(stage=pl.lit("representative"), rep=pl.col("lesson_id"), sim=pl.lit(1.0))
            )
            .otherwise(
                pl.struct(stage=pl.lit("singleton"), rep=pl.col("lesson_id"), sim=pl.lit(1.0))
            )
            .alias("link")
        )
        .select(
            "lesson_id",
            "rid",
            "root_rid",
            pl.col("link").struct.field("stage"),
            pl.col("link").struct.field("rep").alias("representative_lesson_id"),
            pl.col("link").struct.field("sim").alias("similarity"),
        )
        .sort("lesson_id")
    )
    if out.height != facts.height or out["root_rid"].null_count():
        raise AssertionError("every lesson must belong to exactly one cluster")
    return out
