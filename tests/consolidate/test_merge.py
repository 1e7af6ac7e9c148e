import json

import numpy as np
import pytest

from pipeline.consolidate.conflicts import Item
from pipeline.consolidate.merge import MergeInvariantError, MergeResult, OfflineMerger, build_tree
from pipeline.skill.patch import PatchOp


def leaf(i, section="Book flight", title=None, runs=None):
    cid = f"c{i:03d}"
    return Item(
        item_id=cid,
        section=section,
        kind="workflow",
        op="add",
        title=title or f"Distinct lesson number {i} about tool_{i}",
        detail="d",
        cluster_ids=(cid,),
        runs=np.array(runs or [i, i + 1000]),
        n_lessons=2,
    )


def render(items):
    return [
        PatchOp("append", "SKILL.md", section=i.section, text=i.title, item=i.item_id)
        for i in items
    ]


def test_tree_shape_fan_in_and_sections():
    leaves = [leaf(i) for i in range(12)] + [leaf(100 + i, "Refund") for i in range(3)]
    tree = build_tree(leaves, fan_in=5, merger=OfflineMerger(), render=render)
    levels = {}
    for n in tree.nodes:
        levels.setdefault(n["level"], []).append(n)
    # level 0: Book flight 5+5+2, Refund 3 -> 4 nodes; level 1: Book flight's 3 nodes merge, Refund
    # waits; level 2: the two sections meet in the root
    assert [len(levels[k]) for k in sorted(levels)] == [4, 1, 1]
    assert all(n["n_inputs"] <= 5 for n in tree.nodes)
    assert {n["section"] for n in levels[0]} == {"Book flight", "Refund"}
    assert levels[2][0]["section"] is None and tree.root_id == levels[2][0]["node_id"]
    assert len(tree.root) == 15 and len(tree.root_patch) == 15
    assert json.loads(tree.nodes[-1]["patch"])[0]["op"] == "append"
    # every cluster is the child of exactly one level-0 node, every node but the root a child once
    kids = [e["child_id"] for e in tree.edges]
    assert sorted(k for k in kids if k.startswith("c")) == sorted(i.item_id for i in leaves)
    assert len(kids) == len(set(kids)) and all(e["carried"] for e in tree.edges)
    assert set(tree.item_node) == {i.item_id for i in tree.root}


def test_a_single_cluster_still_gets_a_node():
    tree = build_tree([leaf(1)], fan_in=5, merger=OfflineMerger(), render=render)
    assert len(tree.nodes) == 1 and tree.nodes[0]["n_inputs"] == 1 and len(tree.root) == 1


def test_conflict_losers_are_dropped_with_reasons_on_the_edges():
    a = leaf(1, title="Call get_user_details before booking", runs=[1, 2, 3])
    b = leaf(2, title="Do not call get_user_details before booking", runs=[4])
    others = [leaf(i) for i in range(3, 9)]
    tree = build_tree([a, b, *others], fan_in=5, merger=OfflineMerger(), render=render)
    assert set(tree.dropped) == {b.item_id}
    node, reason = tree.dropped[b.item_id]
    assert "3 vs 1" in reason
    edge = next(e for e in tree.edges if e["child_id"] == b.item_id)
    assert edge["parent_node_id"] == node and not edge["carried"] and edge["reason"] == reason
    conflicts = [c for n in tree.nodes for c in json.loads(n["conflicts"])]
    assert len(conflicts) == 1 and conflicts[0]["kind"] == "polarity"
    assert {c for i in tree.root for c in i.cluster_ids} == {i.item_id for i in [a, *others]}


class Forgetful:
    name = "forgetful"

    def merge(self, level, section, items):
        return MergeResult(items=items[1:])


class Inventive:
    name = "inventive"

    def merge(self, level, section, items):
        extra = leaf(999)
        return MergeResult(items=[*items, extra])


class Double:
    name = "double"

    def merge(self, level, section, items):
        return MergeResult(items=items, dropped={items[0].item_id: "both"})


@pytest.mark.parametrize(
    "merger, message",
    [
        (Forgetful(), "neither carried nor dropped"),
        (Inventive(), "not among the inputs"),
        (Double(), "both carried and dropped"),
    ],
)
def test_a_merger_that_loses_or_invents_inputs_is_caught(merger, message):
    with pytest.raises(MergeInvariantError, match=message):
        build_tree([leaf(i) for i in range(4)], fan_in=5, merger=merger, render=render)
