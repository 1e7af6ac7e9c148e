"""The state of a sequentially edited skill: its statements, and the lesson rows behind them.

`State` reads `lesson_facts` in arrival order (and their title embeddings) and holds the statements
written so far; `State.offline` edits one lesson in by the offline rules (see `sequential.py`), a
model editor (`model_sequential.py`) through `new` and `join`. `Edit` is what one batch did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import polars as pl

from pipeline.consolidate.conflicts import Item, position, section_key, stem
from pipeline.consolidate.render import Layout
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


def _compatible(assigns: list, a: int, b: int) -> bool:
    """Two titles do not give one setting different values."""
    da = dict(x.split("=", 1) for x in assigns[a] or [])
    db = dict(x.split("=", 1) for x in assigns[b] or [])
    return all(da[k] == db[k] for k in da.keys() & db.keys())
