"""The parallel mode (the Trace2Skill method): cluster all lessons, summarise, merge as a tree.

Reads `lesson_facts`; runs dedupe/clustering (SQL + LSH), support and the support filter, one
consolidated lesson per cluster, then the merge tree over the kept clusters. Returns a `MergeOutcome`.
"""

from __future__ import annotations

import json
import time

import duckdb
import numpy as np
import polars as pl

from pipeline.consolidate.clusters import build_clusters
from pipeline.consolidate.conflicts import Item
from pipeline.consolidate.dedupe import cluster_lessons
from pipeline.consolidate.merge import Merger, build_tree
from pipeline.consolidate.outcome import CLUSTER_COLUMNS, MergeOutcome, lesson_drops
from pipeline.consolidate.render import Layout, render_patch
from pipeline.consolidate.settings import Thresholds
from pipeline.consolidate.summarise import ExtractiveSummariser, Summariser, samples_for
from pipeline.consolidate.summarise import summarise_clusters as summarise
from pipeline.llm.embed import Embedder


def leaves(
    table: pl.DataFrame, members: pl.DataFrame, facts: pl.DataFrame, run_index: pl.DataFrame
) -> list[Item]:
    """One statement per kept cluster, with the distinct runs behind it, best supported first."""
    kept = table.filter(pl.col("kept"))
    runs = (
        members.join(kept.select("cluster_id"), on="cluster_id")
        .join(facts.select("lesson_id", "trajectory_id"), on="lesson_id")
        .join(run_index, on="trajectory_id")
        .group_by("cluster_id")
        .agg(pl.col("run_idx").unique().sort())
    )
    rows = kept.join(runs, on="cluster_id").sort(
        ["target_section", "n_trajectories", "cluster_id"],
        descending=[False, True, False],
        nulls_last=True,
    )
    return [
        Item(
            item_id=r["cluster_id"],
            section=r["target_section"],
            kind=r["kind"],
            op=r["op"],
            title=r["title"],
            detail=r["content"],
            cluster_ids=(r["cluster_id"],),
            runs=np.asarray(r["run_idx"], dtype=np.int64),
            n_lessons=r["n_lessons"],
            tool_name=r["tool_name"],
            lesson_ids=tuple(r["cited_lesson_ids"]),
        )
        for r in rows.iter_rows(named=True)
    ]


def run_parallel(
    con: duckdb.DuckDBPyConnection,
    facts: pl.DataFrame,
    *,
    embedder: Embedder,
    t: Thresholds,
    layout: Layout,
    fan_in: int,
    min_support: int,
    merger: Merger,
    summariser: Summariser | None = None,
) -> MergeOutcome:
    seconds: dict[str, float] = {}
    clustering = cluster_lessons(con, facts, embedder, t)
    seconds.update(clustering.seconds)

    clock = time.perf_counter()
    cl = build_clusters(con, facts, clustering, min_support)
    seconds["support"] = time.perf_counter() - clock

    clock = time.perf_counter()
    summariser = summariser or ExtractiveSummariser()
    rid_of = clustering.members.select("lesson_id", "rid")
    kept = cl.table.filter(pl.col("kept"))
    samples = samples_for(
        kept, cl.members, facts, clustering.vectors, rid_of, summariser.sample_size
    )
    # the model (if any) summarises kept clusters only; dropped ones keep their medoid's words
    parts = [summarise(con, summariser, kept, cl.members, facts, samples)]
    weak = cl.table.filter(~pl.col("kept"))
    if weak.height:
        parts.append(summarise(con, ExtractiveSummariser(), weak, cl.members, facts, samples))
    summaries = pl.concat(parts).sort("cluster_id")
    table = cl.table.join(
        summaries.rename({"fallback": "summary_fallback", "llm_call_key": "summary_call_key"}),
        on="cluster_id",
    )
    seconds["summarise"] = time.perf_counter() - clock

    clock = time.perf_counter()
    items = leaves(table, cl.members, facts, layout.runs.index())
    tree = build_tree(
        items, fan_in=fan_in, merger=merger, render=lambda its: render_patch(its, layout)
    )
    seconds["merge"] = time.perf_counter() - clock

    dropped = pl.concat([cl.dropped, lesson_drops(cl.members, tree.dropped, "merge")])
    return MergeOutcome(
        clusters=table.select(CLUSTER_COLUMNS),
        members=cl.members,
        dropped=dropped,
        nodes=tree.nodes,
        edges=tree.edges,
        items=tree.root,
        item_node=tree.item_node,
        patch=tree.root_patch,
        n_ops=len(tree.root_patch),
        n_conflicts=sum(len(json.loads(n["conflicts"])) for n in tree.nodes),
        seconds=seconds,
        n_pairs=clustering.n_pairs,
    )
