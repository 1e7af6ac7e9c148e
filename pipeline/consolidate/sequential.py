"""The sequential baseline: the skill edited one batch of lessons at a time, in arrival order.

This is how ExpeL- and ACE-style systems (and Seq-B baselines) grow a skill: each batch of
`batch_size` lessons is compared with the statements the skill holds *so far*. Offline, a lesson
joins the statement it duplicates (same normalised title, or embedding cosine >= the semantic
threshold, in its block); a lesson contradicting a statement (same stem, other polarity or setting
values) is judged on the evidence seen so far (the statement's runs vs one); otherwise it becomes
a new statement. With a model (`model_sequential.py`), the model sees the statements so far and
the batch and answers with edits; a batch it cannot edit (failed call, spent budget) is edited
offline, and lessons it leaves out even after a re-ask are edited offline too. At the end,
statements below --min-support are pruned. Each batch is one merge node (level = batch number);
its patch re-renders the statements it created or changed.

Unlike the parallel mode, nothing here sees the whole pool at once: the first phrasing of a lesson
stays its title (offline), and a conflict is settled by whichever side arrived first with more runs.
"""

from __future__ import annotations

import json
import time

import duckdb
import polars as pl

from pipeline.consolidate.clusters import cluster_support
from pipeline.consolidate.merge import Merger
from pipeline.consolidate.outcome import CLUSTER_COLUMNS, MergeOutcome, lesson_drops
from pipeline.consolidate.render import Layout, render_patch
from pipeline.consolidate.settings import Thresholds
from pipeline.consolidate.statements import Edit, State
from pipeline.ids import digest
from pipeline.llm.embed import Embedder


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
    editor=None,
) -> MergeOutcome:
    """`editor` (a `model_sequential.ModelEditor`) edits each batch through a model; without
    one, every batch is edited offline."""
    clock = time.perf_counter()
    st = State(facts, layout, embedder, t)
    seconds = {"embed": time.perf_counter() - clock}

    clock = time.perf_counter()
    ids = st.ids
    nodes, edges, n_ops, n_conflicts, prev = [], [], 0, 0, None
    for b, start in enumerate(range(0, len(ids), batch_size)):
        batch = list(range(start, min(start + batch_size, len(ids))))
        edit = Edit(digest("sequential-batch", b, ids[start], ids[batch[-1]]))
        if editor is not None:
            editor.edit(st, batch, edit)
        else:
            for r in batch:
                st.offline(r, edit)
        n_conflicts += len(edit.conflicts)
        changed = [st.item(st.stmts[i]) for i in sorted(edit.touched) if st.live(i)]
        ops = render_patch(changed, layout) if changed else []
        n_ops += len(ops)
        nodes.append(
            {
                "node_id": edit.node_id,
                "level": b,
                "section": None,
                "n_inputs": len(batch) + (prev is not None),
                "patch": json.dumps([o.to_dict() for o in ops], ensure_ascii=False),
                "conflicts": json.dumps(edit.conflicts, ensure_ascii=False),
                "model": edit.model,
                "llm_call_key": edit.llm_call_key,
                "repair_call_key": edit.repair_call_key,
                "fallback": edit.fallback,
                "n_omitted": edit.n_omitted,
            }
        )
        if prev is not None:
            edges.append(
                {"parent_node_id": edit.node_id, "child_id": prev, "child_kind": "node",
                 "carried": True, "reason": None, "llm_call_key": edit.llm_call_key}
            )  # fmt: skip
        edges += [
            {
                "parent_node_id": edit.node_id,
                "child_id": ids[r],
                "child_kind": "lesson",
                "carried": r not in edit.outcome_of,
                "reason": edit.outcome_of.get(r),
                "llm_call_key": edit.llm_call_key,
            }
            for r in batch
        ]
        prev = edit.node_id
    seconds["edit"] = time.perf_counter() - clock
    return _finish(con, facts, st, nodes, edges, n_ops, n_conflicts, layout, min_support, seconds)


def _finish(
    con, facts, st: State, nodes, edges, n_ops, n_conflicts, layout, min_support, seconds
) -> MergeOutcome:
    ids, drops = st.ids, st.drops
    # every lesson needs a cluster: statements, plus one singleton per lesson dropped alone
    stmts = [s for s in st.stmts if s.merged_into is None]
    groups = [(s.first, s.rows) for s in stmts] + [(r, [r]) for r in sorted(drops)]
    member_rows = []
    cluster_of_first: dict[int, str] = {}
    for first, members in groups:
        cid = digest("cluster", "\n".join(sorted(ids[i] for i in members)))
        cluster_of_first[first] = cid
        for r in members:
            stage, rep, sim = st.link[r] if r not in drops else ("singleton", ids[r], 1.0)
            if stage == "representative" and len(members) == 1:
                stage = "singleton"
            member_rows.append((ids[r], cid, stage, rep, float(sim)))
    members = pl.DataFrame(
        member_rows,
        orient="row",
        schema=["lesson_id", "cluster_id", "stage", "representative_lesson_id", "similarity"],
    ).sort("lesson_id")
    support = cluster_support(con, members, facts, min_support)
    words = pl.DataFrame(
        [
            (cluster_of_first[s.first], ids[s.first], it.title, it.detail, s.writer or "offline",
             s.call_key)
            for s, it in ((s, st.item(s)) for s in stmts)
        ]
        + [(cluster_of_first[r], ids[r], st.titles[r], None, "offline", None) for r in sorted(drops)],
        orient="row",
        schema={"cluster_id": pl.String, "medoid_lesson_id": pl.String, "title": pl.String,
                "content": pl.String, "summariser": pl.String, "summary_call_key": pl.String},
    )  # fmt: skip
    content = facts.select(medoid_lesson_id="lesson_id", lesson_content="content")
    clusters = (
        support.join(words, on="cluster_id")
        .join(content, on="medoid_lesson_id")
        .with_columns(
            content=pl.coalesce("content", "lesson_content"),
            cited_lesson_ids=pl.concat_list("medoid_lesson_id"),
            summary_fallback=pl.lit(None, pl.String),
        )
        .select(CLUSTER_COLUMNS)
        .sort("cluster_id")
    )
    weak = set(clusters.filter(~pl.col("kept"))["cluster_id"].to_list())
    final = [s for s in stmts if s.removed is None and cluster_of_first[s.first] not in weak]
    items = [st.item(s) for s in final]
    support_drops = {
        cluster_of_first[s.first]: (
            None,
            f"support: seen in {len(s.runs)} distinct trajectory(ies) "
            f"by the end of the run, below --min-support {min_support}",
        )
        for s in stmts
        if s.removed is None and cluster_of_first[s.first] in weak
    }
    merge_drops = {cluster_of_first[r]: v for r, v in drops.items()}
    merge_drops |= {cluster_of_first[s.first]: s.removed for s in stmts if s.removed is not None}
    patch = render_patch(items, layout)
    return MergeOutcome(
        clusters=clusters,
        members=members,
        dropped=pl.concat(
            [
                lesson_drops(members, support_drops, "support"),
                lesson_drops(members, merge_drops, "merge"),
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
