"""The merge tree: consolidated lessons merged k at a time, level by level, into one patch.

Level 0 batches the kept clusters of one target section `fan_in` at a time (best supported
first); each higher level batches the nodes below it, again section by section, pooling sections
that are down to a single node, until one node (the root) remains. A node's merger turns its
inputs' statements into its own statements; its patch is their rendering (`render.py`), so the
root's patch is the one applied to the skill.

Nothing vanishes: every cluster reaching a node either leaves it inside a statement or is dropped
by it with a reason, and `check_node` raises `MergeInvariantError` otherwise. Every node becomes a
`merge_nodes` row (its patch and conflicts) and every input a `merge_edges` row.

The nodes of one level are merged together (`Merger.merge_level`), so a model merger sends them
to the server at once. Mergers: `OfflineMerger` (duplicates joined, conflicts resolved by
evidence, see conflicts.py) and `ModelMerger` (`model_merge.py`, `prompts/merge.md`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from pipeline.consolidate.conflicts import Item, resolve, section_key
from pipeline.ids import digest
from pipeline.skill.patch import PatchOp


class MergeInvariantError(AssertionError):
    """A merge node lost, invented or duplicated an input."""


@dataclass
class MergeResult:
    items: list[Item]
    conflicts: list[dict] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # cluster_id -> reason
    llm_call_key: str | None = None
    repair_call_key: str | None = None  # the re-ask naming omitted ids, if any
    fallback: str | None = None  # what code did instead of the model, and why
    n_omitted: int = 0  # inputs the model left out even after the re-ask
    model: str | None = None  # who merged it, when not the merger's name (an offline fallback)


@dataclass
class MergeJob:
    node_id: str
    level: int
    section: str | None  # shared by every input, else None
    inputs: list[Item]


class Merger(Protocol):
    """Merges every node of one level (`merge_level`); a merger with only `merge` (one node at a
    time) is called node by node."""

    name: str

    def merge_level(self, jobs: list[MergeJob]) -> list[MergeResult]: ...


def combine(group: list[Item], conditional: bool) -> Item:
    """One statement from items found to say the same thing (or to tie in a conflict)."""
    if len(group) == 1:
        return group[0]
    group = sorted(group, key=lambda i: (-i.support, i.title, i.item_id))
    clusters = tuple(sorted(c for i in group for c in i.cluster_ids))
    runs = np.unique(np.concatenate([i.runs for i in group]))
    lessons = tuple(sorted({x for i in group for x in i.lesson_ids}))
    first = group[0]
    if conditional:
        sides = "; ".join(f"{i.title!r} ({i.support} runs)" for i in group)
        title = f"Runs disagree on this, so check which case applies before acting: {sides}"
        detail = " / ".join(f"{i.title}: {i.detail}" for i in group)
        note = "conditional: tied conflict kept as one statement"
    else:
        title, detail, note = first.title, first.detail, f"merged {len(group)} duplicates"
    return Item(
        item_id=digest("item", clusters),
        section=first.section,
        kind=first.kind,
        op=first.op,
        title=title,
        detail=detail,
        cluster_ids=clusters,
        runs=runs,
        n_lessons=sum(i.n_lessons for i in group),
        tool_name=first.tool_name,
        lesson_ids=lessons,
        note=note,
        children=group,
    )


class OfflineMerger:
    name = "offline"

    def merge(self, level: int, section: str | None, items: list[Item]) -> MergeResult:
        res = resolve(items)
        out = [combine(g, c) for g, c in zip(res.kept, res.conditional, strict=True)]
        return MergeResult(items=order(out), conflicts=res.conflicts, dropped=res.dropped)

    def merge_level(self, jobs: list[MergeJob]) -> list[MergeResult]:
        return [self.merge(j.level, j.section, j.inputs) for j in jobs]


def merge_all(merger, jobs: list[MergeJob]) -> list[MergeResult]:
    if not jobs:
        return []
    if hasattr(merger, "merge_level"):
        return merger.merge_level(jobs)
    return [merger.merge(j.level, j.section, j.inputs) for j in jobs]


def order(items: list[Item]) -> list[Item]:
    return sorted(items, key=lambda i: (section_key(i.section), -i.support, i.title, i.item_id))


def check_node(node_id: str, inputs: list[Item], result: MergeResult) -> None:
    seen: dict[str, int] = {}
    for it in inputs:
        for c in it.cluster_ids:
            seen[c] = seen.get(c, 0) + 1
    out: dict[str, int] = {}
    for it in result.items:
        for c in it.cluster_ids:
            out[c] = out.get(c, 0) + 1
    problems = []
    if dup := sorted(c for c, n in out.items() if n > 1):
        problems.append(f"clusters in two statements: {dup[:3]}")
    if extra := sorted((set(out) | set(result.dropped)) - set(seen)):
        problems.append(f"clusters not among the inputs: {extra[:3]}")
    if both := sorted(set(out) & set(result.dropped)):
        problems.append(f"clusters both carried and dropped: {both[:3]}")
    if lost := sorted(set(seen) - set(out) - set(result.dropped)):
        problems.append(f"clusters neither carried nor dropped: {lost[:3]}")
    if problems:
        raise MergeInvariantError(f"merge node {node_id}: " + "; ".join(problems))


@dataclass
class Entry:
    id: str
    kind: str  # cluster / node
    section: str | None
    items: list[Item]


@dataclass
class Tree:
    nodes: list[dict] = field(default_factory=list)
    edges: list[dict] = field(default_factory=list)
    dropped: dict[str, tuple[str, str]] = field(default_factory=dict)  # cluster -> (node, reason)
    item_node: dict[str, str] = field(default_factory=dict)  # root statement -> emitting node
    root: list[Item] = field(default_factory=list)
    root_patch: list[PatchOp] = field(default_factory=list)
    root_id: str | None = None


def _batches(entries: list[Entry], fan_in: int, level: int) -> list[list[Entry]]:
    by_section: dict[str, list[Entry]] = {}
    for e in entries:
        by_section.setdefault(section_key(e.section), []).append(e)
    batches, pool = [], []
    for group in by_section.values():
        if len(group) == 1 and level > 0:
            pool.extend(group)
            continue
        batches += [group[i : i + fan_in] for i in range(0, len(group), fan_in)]
    batches += [pool[i : i + fan_in] for i in range(0, len(pool), fan_in)]
    return batches


def build_tree(
    leaves: list[Item],
    *,
    fan_in: int,
    merger: Merger,
    render: Callable[[list[Item]], list[PatchOp]],
) -> Tree:
    """Merge `leaves` (one per kept cluster, in section then support order) into one patch."""
    tree = Tree()
    frontier = [Entry(i.cluster_ids[0], "cluster", i.section, [i]) for i in leaves]
    level = 0
    while frontier and (level == 0 or len(frontier) > 1):
        nxt: list[Entry | None] = []
        todo: list[tuple[int, list[Entry], MergeJob]] = []
        for batch in _batches(frontier, fan_in, level):
            if len(batch) == 1 and level > 0:
                nxt.append(batch[0])  # nothing to merge it with at this level
                continue
            todo.append((len(nxt), batch, _job(batch, level)))
            nxt.append(None)
        results = merge_all(merger, [job for _, _, job in todo])
        for (slot, batch, job), result in zip(todo, results, strict=True):
            nxt[slot] = _record(tree, batch, job, result, merger.name, render)
        frontier, level = [e for e in nxt if e is not None], level + 1
    if frontier:
        root = frontier[0]
        tree.root, tree.root_id = root.items, root.id
        tree.root_patch = [PatchOp.from_dict(d) for d in json.loads(tree.nodes[-1]["patch"])]
        if tree.nodes[-1]["node_id"] != root.id:
            raise MergeInvariantError("the root is not the last node written")
    return tree


def _job(batch: list[Entry], level: int) -> MergeJob:
    sections = {section_key(e.section) for e in batch}
    return MergeJob(
        node_id=digest("merge-node", level, sorted(e.id for e in batch)),
        level=level,
        section=batch[0].section if len(sections) == 1 else None,
        inputs=[it for e in batch for it in e.items],
    )


def _record(tree: Tree, batch: list[Entry], job: MergeJob, result: MergeResult, name, render):
    """Check a node's result and write its row and its edges."""
    node_id, level, section = job.node_id, job.level, job.section
    check_node(node_id, job.inputs, result)
    for c, reason in result.dropped.items():
        tree.dropped[c] = (node_id, reason)
    for it in result.items:
        tree.item_node.setdefault(it.item_id, node_id)  # the node that first emitted it
    carried = {c for it in result.items for c in it.cluster_ids}
    for e in batch:
        clusters = [c for it in e.items for c in it.cluster_ids]
        ok = any(c in carried for c in clusters)
        reasons = sorted({result.dropped[c] for c in clusters if c in result.dropped})
        tree.edges.append(
            {
                "parent_node_id": node_id,
                "child_id": e.id,
                "child_kind": e.kind,
                "carried": ok,
                "reason": None if ok else "; ".join(reasons),
                "llm_call_key": result.llm_call_key,
            }
        )
    ops = render(result.items)
    tree.nodes.append(
        {
            "node_id": node_id,
            "level": level,
            "section": section,
            "n_inputs": len(batch),
            "patch": json.dumps([op.to_dict() for op in ops], ensure_ascii=False),
            "conflicts": json.dumps(result.conflicts, ensure_ascii=False),
            "model": result.model or name,
            "llm_call_key": result.llm_call_key,
            "repair_call_key": result.repair_call_key,
            "fallback": result.fallback,
            "n_omitted": result.n_omitted,
        }
    )
    return Entry(node_id, "node", section, result.items)
