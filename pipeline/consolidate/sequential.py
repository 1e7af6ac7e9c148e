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
from dataclasses import dataclass, field
from functools import cached_property

import duckdb
import numpy as np
import polars as pl

from pipeline import sql
from pipeline.consolidate.conflicts import Item, position, section_key, stem
from pipeline.consolidate.merge import Merger
from pipeline.consolidate.outcome import CLUSTER_COLUMNS, Outcome, lesson_drops
from pipeline.consolidate.render import Layout, render_patch
from pipeline.consolidate.settings import Thresholds
from pipeline.ids import digest
from pipeline.llm.embed import Embedder


@dataclass
class Statement:
    idx: int
    block: str
    key: tuple[str, str]  # (section key, stem)
    position: tuple
    first: int  # row of the lesson it started from
    norm_title: str
    rows: list[int] = field(default_factory=list)
    runs: set[int] = field(default_factory=set)
    node: str | None = None
    # written by a model: its words and placement, who wrote them and in which call
    title: str | None = None
    detail: str | None = None
    section: str | None = None
    edit: str | None = None
    anchor: str | None = None
    removes: str | None = None
    writer: str | None = None
    call_key: str | None = None
    removed: tuple[str, str] | None = None  # (node, reason) when a model removed it
    merged_into: int | None = None  # another statement took its lessons


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


@dataclass
class Edit:
    """What one batch did: the statements it touched, its conflicts, its lessons' fates."""

    node_id: str
    touched: set[int] = field(default_factory=set)
    conflicts: list[dict] = field(default_factory=list)
    outcome_of: dict[int, str] = field(default_factory=dict)  # row -> why not carried
    model: str = "offline"
    llm_call_key: str | None = None
    repair_call_key: str | None = None
    fallback: str | None = None
    n_omitted: int = 0


class State:
    """The skill so far: its statements, and the lessons' rows they were built from."""

    def __init__(self, facts: pl.DataFrame, layout: Layout, embedder: Embedder, t: Thresholds):
        rows = facts.sort("created_at", "trajectory_id", "lesson_id", nulls_last=True)
        self.rows, self.t = rows, t
        runs = rows.join(layout.runs.index(), on="trajectory_id", how="left")
        self.run_idx = runs["run_idx"].to_list()
        self.titles = rows["title"].to_list()
        titles = np.asarray(self.titles, dtype=object).astype(str)
        uniq, inverse = np.unique(titles, return_inverse=True)
        self.vectors = embedder.embed(uniq.tolist())[inverse]
        self.ids = rows["lesson_id"].to_list()
        self.blocks, self.norms = rows["block"].to_list(), rows["norm_title"].to_list()
        self.sections, self.assigns = rows["section"].to_list(), rows["assigns"].to_list()
        self.stmts: list[Statement] = []
        self.by_norm: dict[tuple[str, str], int] = {}
        self.by_stem: dict[tuple[str, str], list[int]] = {}
        self.index = _Index(self.vectors.shape[1])
        self.link: list[tuple[str, str, float]] = [("", "", 0.0)] * len(self.ids)
        self.drops: dict[int, tuple[str, str]] = {}  # row -> (node, reason)

    @cached_property
    def facts(self) -> list[dict]:
        """kind, content, outcome and task of each row (for a model's prompts)."""
        return self.rows.select("kind", "content", "outcome", "task_id").to_dicts()

    def live(self, sid: int | None) -> bool:
        return sid is not None and self.stmts[sid].removed is None and self.stmts[sid].merged_into is None  # fmt: skip

    def join(self, sid: int, r: int, stage: str, sim: float, edit: Edit) -> None:
        s = self.stmts[sid]
        self.link[r] = (stage, self.ids[s.first], sim)
        s.rows.append(r)
        if self.run_idx[r] is not None:
            s.runs.add(self.run_idx[r])
        edit.touched.add(sid)

    def new(self, r: int, edit: Edit, section: str | None = None, title: str | None = None) -> int:
        sid = len(self.stmts)
        words = title or self.titles[r]
        key = (section_key(section or self.sections[r]), stem(words))
        s = Statement(
            sid, self.blocks[r], key, position(words), r, self.norms[r], node=edit.node_id
        )
        self.stmts.append(s)
        if not self.live(self.by_norm.get((self.blocks[r], self.norms[r]))):
            self.by_norm[(self.blocks[r], self.norms[r])] = sid
        self.by_stem.setdefault(key, []).append(sid)
        self.index.add(self.blocks[r], self.vectors[r], sid)
        self.join(sid, r, "representative", 1.0, edit)
        return sid

    def offline(self, r: int, edit: Edit) -> None:
        """One lesson edited into the skill by the offline rules (see the module docstring)."""
        sid = self.by_norm.get((self.blocks[r], self.norms[r]))
        sid = sid if self.live(sid) else None
        sim = 1.0
        if sid is None:
            cand, sim = self.index.best(self.blocks[r], self.vectors[r])
            if (
                self.live(cand)
                and sim >= self.t.semantic_threshold
                and _compatible(self.assigns, self.stmts[cand].first, r)
            ):
                sid = cand
        if sid is not None:
            stage = "exact" if self.norms[r] == self.stmts[sid].norm_title else "semantic"
            self.join(sid, r, stage, sim, edit)
            return
        key = (section_key(self.sections[r]), stem(self.titles[r]))
        here = position(self.titles[r])
        rivals = [i for i in self.by_stem.get(key, []) if self.live(i) and self.stmts[i].position != here]  # fmt: skip
        strongest = max(rivals, key=lambda i: len(self.stmts[i].runs), default=None)
        if strongest is not None and len(self.stmts[strongest].runs) > 1:
            s = self.stmts[strongest]
            reason = (
                f"conflict: contradicted by {self.titles[s.first]!r}, already seen in "
                f"{len(s.runs)} runs"
            )
            self.drops[r] = (edit.node_id, reason)
            edit.conflicts.append({"kind": "sequential", "lesson_id": self.ids[r], "resolution": reason})  # fmt: skip
            edit.outcome_of[r] = reason
            return
        if strongest is not None:
            edit.conflicts.append(
                {"kind": "sequential", "lesson_id": self.ids[r],
                 "resolution": "tie at 1 run: kept both statements"}
            )  # fmt: skip
        self.new(r, edit)

    def item(self, s: Statement) -> Item:
        r = self.rows.row(s.first, named=True)
        cid = digest("cluster", "\n".join(sorted(self.ids[i] for i in s.rows)))
        return Item(
            item_id=cid,
            section=s.section or r["section"],
            kind=r["kind"],
            op=r["op"],
            title=s.title or r["title"],
            detail=s.detail if s.detail is not None else r["content"],
            cluster_ids=(cid,),
            runs=np.array(sorted(s.runs), dtype=np.int64),
            n_lessons=len(s.rows),
            tool_name=r["tool_name"],
            lesson_ids=(self.ids[s.first],),
            edit=s.edit,
            anchor=s.anchor,
            removes=s.removes,
        )


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
) -> Outcome:
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


def _compatible(assigns: list, a: int, b: int) -> bool:
    """Two titles do not give one setting different values."""
    da = dict(x.split("=", 1) for x in assigns[a] or [])
    db = dict(x.split("=", 1) for x in assigns[b] or [])
    return all(da[k] == db[k] for k in da.keys() & db.keys())


def _finish(
    con, facts, st: State, nodes, edges, n_ops, n_conflicts, layout, min_support, seconds
) -> Outcome:
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
    con.register("cluster_lessons", members.select("lesson_id", "cluster_id"))
    con.register("lesson_facts", facts)
    try:
        support = sql.query(con, "consolidate_support", min_support=min_support)
    finally:
        con.unregister("cluster_lessons")
        con.unregister("lesson_facts")
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
    return Outcome(
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
