"""The sequential baseline: the skill edited one batch of lessons at a time, in arrival order.

This is how ExpeL- and ACE-style systems (and Seq-B baselines) grow a skill: each batch of
`batch_size` lessons is compared with the statements the skill holds *so far*. A lesson joins the
statement it duplicates (same normalised title, or embedding cosine >= the semantic threshold, in
its block); a lesson contradicting a statement (same stem, other polarity or setting values) is
judged on the evidence seen so far (the statement's runs vs one); otherwise it becomes a new
statement. At the end, statements below --min-support are pruned. Each batch is one merge node
(level = batch number); its patch re-renders the statements it created or changed.

Unlike the parallel mode, nothing here sees the whole pool at once: the first phrasing of a lesson
stays its title, and a conflict is settled by whichever side arrived first with more runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from pipeline import sql
from pipeline.consolidate.conflicts import Item, position, stem
from pipeline.consolidate.merge import Merger
from pipeline.consolidate.outcome import CLUSTER_COLUMNS, Outcome, lesson_drops
from pipeline.consolidate.render import Layout, render_patch
from pipeline.consolidate.settings import Thresholds
from pipeline.ids import digest
from pipeline.llm.embed import Embedder


@dataclass
class _Statement:
    idx: int
    block: str
    key: tuple[str, str]  # (section key, stem)
    position: tuple
    first: int  # row of the lesson it started from
    norm_title: str
    rows: list[int] = field(default_factory=list)
    runs: set[int] = field(default_factory=set)
    node: str | None = None


class _Index:
    """Statement vectors per block, in a growing matrix."""

    def __init__(self, dim: int):
        self.dim = dim
        self.mats: dict[str, np.ndarray] = {}
        self.ids: dict[str, list[int]] = {}

    def add(self, block: str, vec: np.ndarray, sid: int) -> None:
        ids = self.ids.setdefault(block, [])
        mat = self.mats.get(block)
        if mat is None or len(ids) == mat.shape[0]:
            grown = np.zeros((max(16, 2 * len(ids)), self.dim), dtype=np.float32)
            if mat is not None:
                grown[: len(ids)] = mat[: len(ids)]
            self.mats[block] = mat = grown
        mat[len(ids)] = vec
        ids.append(sid)

    def best(self, block: str, vec: np.ndarray) -> tuple[int | None, float]:
        ids = self.ids.get(block)
        if not ids:
            return None, -1.0
        sims = self.mats[block][: len(ids)] @ vec
        k = int(np.argmax(sims))
        return ids[k], float(sims[k])


def run_sequential(
    con: duckdb.DuckDBPyConnection,
    facts: pl.DataFrame,
    *,
    batch_size: int,
    embedder: Embedder,
    t: Thresholds,
    layout: Layout,
    min_support: int,
    merger: Merger,
) -> Outcome:
    clock = time.perf_counter()
    rows = facts.sort("created_at", "trajectory_id", "lesson_id", nulls_last=True)
    run_idx = rows.join(layout.runs.index(), on="trajectory_id", how="left")["run_idx"].to_list()
    titles = rows["title"].to_list()
    uniq, inverse = np.unique(np.asarray(titles, dtype=object).astype(str), return_inverse=True)
    vectors = embedder.embed(uniq.tolist())[inverse]
    ids, blocks, norms = (
        rows["lesson_id"].to_list(),
        rows["block"].to_list(),
        rows["norm_title"].to_list(),
    )
    sections = rows["section"].to_list()
    assigns = rows["assigns"].to_list()
    seconds = {"embed": time.perf_counter() - clock}

    clock = time.perf_counter()
    stmts: list[_Statement] = []
    by_norm: dict[tuple[str, str], int] = {}
    by_stem: dict[tuple[str, str], list[int]] = {}
    index = _Index(vectors.shape[1])
    link: list[tuple[str, str, float]] = [("", "", 0.0)] * len(ids)  # stage, rep, similarity
    drops: dict[int, tuple[str, str]] = {}  # row -> (node, reason)
    nodes, edges, n_ops, n_conflicts, prev = [], [], 0, 0, None
    for b, start in enumerate(range(0, len(ids), batch_size)):
        batch = range(start, min(start + batch_size, len(ids)))
        node_id = digest("sequential-batch", b, ids[start], ids[batch[-1]])
        touched, conflicts, outcome_of = set(), [], {}
        for r in batch:
            key = (sections[r] or "").lower(), stem(titles[r])
            sid = by_norm.get((blocks[r], norms[r]))
            sim = 1.0
            if sid is None:
                cand, sim = index.best(blocks[r], vectors[r])
                if (
                    cand is not None
                    and sim >= t.semantic_threshold
                    and _compatible(assigns, stmts[cand].first, r)
                ):
                    sid = cand
            if sid is not None:
                s = stmts[sid]
                link[r] = ("exact" if norms[r] == s.norm_title else "semantic", ids[s.first], sim)
            else:
                rivals = [
                    i for i in by_stem.get(key, []) if stmts[i].position != position(titles[r])
                ]
                strongest = max(rivals, key=lambda i: len(stmts[i].runs), default=None)
                if strongest is not None and len(stmts[strongest].runs) > 1:
                    reason = (
                        f"conflict: contradicted by {titles[stmts[strongest].first]!r}, already "
                        f"seen in {len(stmts[strongest].runs)} runs"
                    )
                    drops[r] = (node_id, reason)
                    conflicts.append(
                        {"kind": "sequential", "lesson_id": ids[r], "resolution": reason}
                    )
                    outcome_of[r] = reason
                    continue
                if strongest is not None:
                    conflicts.append(
                        {
                            "kind": "sequential",
                            "lesson_id": ids[r],
                            "resolution": "tie at 1 run: kept both statements",
                        }
                    )
                sid = len(stmts)
                stmts.append(
                    _Statement(sid, blocks[r], key, position(titles[r]), r, norms[r], node=node_id)
                )
                by_norm[(blocks[r], norms[r])] = sid
                by_stem.setdefault(key, []).append(sid)
                index.add(blocks[r], vectors[r], sid)
                link[r] = ("representative", ids[r], 1.0)
            stmts[sid].rows.append(r)
            if run_idx[r] is not None:
                stmts[sid].runs.add(run_idx[r])
            touched.add(sid)
        n_conflicts += len(conflicts)
        changed = [_item(stmts[i], rows, ids) for i in sorted(touched)]
        ops = render_patch(changed, layout) if changed else []
        n_ops += len(ops)
        nodes.append(
            {
                "node_id": node_id,
                "level": b,
                "section": None,
                "n_inputs": len(batch) + (prev is not None),
                "patch": json.dumps([o.to_dict() for o in ops], ensure_ascii=False),
                "conflicts": json.dumps(conflicts, ensure_ascii=False),
                "model": merger.name,
                "llm_call_key": None,
            }
        )
        if prev is not None:
            edges.append(
                {
                    "parent_node_id": node_id,
                    "child_id": prev,
                    "child_kind": "node",
                    "carried": True,
                    "reason": None,
                }
            )
        edges += [
            {
                "parent_node_id": node_id,
                "child_id": ids[r],
                "child_kind": "lesson",
                "carried": r not in outcome_of,
                "reason": outcome_of.get(r),
            }
            for r in batch
        ]
        prev = node_id
    seconds["edit"] = time.perf_counter() - clock
    return _finish(
        con,
        facts,
        rows,
        ids,
        stmts,
        link,
        drops,
        nodes,
        edges,
        n_ops,
        n_conflicts,
        layout,
        min_support,
        seconds,
    )


def _compatible(assigns: list, a: int, b: int) -> bool:
    """Two titles do not give one setting different values."""
    da = dict(x.split("=", 1) for x in assigns[a] or [])
    db = dict(x.split("=", 1) for x in assigns[b] or [])
    return all(da[k] == db[k] for k in da.keys() & db.keys())


def _item(s: _Statement, rows: pl.DataFrame, ids: list[str]) -> Item:
    r = rows.row(s.first, named=True)
    cid = digest("cluster", "\n".join(sorted(ids[i] for i in s.rows)))
    return Item(
        item_id=cid,
        section=r["section"],
        kind=r["kind"],
        op=r["op"],
        title=r["title"],
        detail=r["content"],
        cluster_ids=(cid,),
        runs=np.array(sorted(s.runs), dtype=np.int64),
        n_lessons=len(s.rows),
        tool_name=r["tool_name"],
        lesson_ids=(ids[s.first],),
    )


def _finish(
    con,
    facts,
    rows,
    ids,
    stmts,
    link,
    drops,
    nodes,
    edges,
    n_ops,
    n_conflicts,
    layout,
    min_support,
    seconds,
) -> Outcome:
    # every lesson needs a cluster: statements, plus one singleton per lesson dropped in conflict
    groups = [(s.first, s.rows) for s in stmts] + [(r, [r]) for r in sorted(drops)]
    member_rows = []
    cluster_of_first: dict[int, str] = {}
    for first, members in groups:
        cid = digest("cluster", "\n".join(sorted(ids[i] for i in members)))
        cluster_of_first[first] = cid
        for r in members:
            stage, rep, sim = link[r] if r not in drops else ("singleton", ids[r], 1.0)
            if stage == "representative" and len(members) == 1:
                stage = "singleton"
            member_rows.append((ids[r], cid, stage, rep, float(sim)))
    members = pl.DataFrame(
        member_rows,
        orient="row",
        schema=["lesson_id", "cluster_id", "stage", "representative_lesson_id", "similarity"],
    ).sort("lesson_id")
    con.register("cluster_lessons", members.select("lesson_id", "cluster_id"))
    con.register("lesson_facts", facts)
    try:
        support = sql.query(con, "consolidate_support", min_support=min_support)
    finally:
        con.unregister("cluster_lessons")
        con.unregister("lesson_facts")
    firsts = pl.DataFrame(
        {
            "cluster_id": list(cluster_of_first.values()),
            "medoid_lesson_id": [ids[f] for f in cluster_of_first],
        }
    )
    clusters = (
        support.join(firsts, on="cluster_id")
        .join(
            facts.select(medoid_lesson_id="lesson_id", title="title", content="content"),
            on="medoid_lesson_id",
        )
        .with_columns(cited_lesson_ids=pl.concat_list("medoid_lesson_id"))
        .select(CLUSTER_COLUMNS)
        .sort("cluster_id")
    )
    weak = set(clusters.filter(~pl.col("kept"))["cluster_id"].to_list())
    final = [s for s in stmts if cluster_of_first[s.first] not in weak]
    items = [_item(s, rows, ids) for s in final]
    support_drops = {
        cluster_of_first[s.first]: (
            None,
            f"support: seen in {len(s.runs)} distinct trajectory(ies) "
            f"by the end of the run, below --min-support {min_support}",
        )
        for s in stmts
        if cluster_of_first[s.first] in weak
    }
    conflict_drops = {cluster_of_first[r]: v for r, v in drops.items()}
    patch = render_patch(items, layout)
    return Outcome(
        clusters=clusters,
        members=members,
        dropped=pl.concat(
            [
                lesson_drops(members, support_drops, "support"),
                lesson_drops(members, conflict_drops, "merge"),
            ]
        ),
        nodes=nodes,
        edges=edges,
        items=items,
        item_node={it.item_id: s.node for it, s in zip(items, final, strict=True)},
        patch=patch,
        n_ops=n_ops + len(patch),
        n_conflicts=n_conflicts,
        seconds=seconds,
    )
