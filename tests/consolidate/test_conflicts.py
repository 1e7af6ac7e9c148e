import numpy as np

from pipeline.consolidate.conflicts import Item, negated, position, resolve, stem
from pipeline.consolidate.merge import OfflineMerger


def item(title, runs, section="Book flight", cid=None):
    return Item(
        item_id=cid or title,
        section=section,
        kind="failure_lesson",
        op="add",
        title=title,
        detail="",
        cluster_ids=(cid or title,),
        runs=np.array(runs),
        n_lessons=len(runs),
    )


def test_negation_is_read_from_the_main_clause():
    assert negated("Do not call X")
    assert negated("When the user is gold, never offer Y")
    assert not negated("Call X when the user has not paid")
    assert not negated("If the user does not ask, call X")
    assert stem("Do not call X when the user has not paid") == stem(
        "Call X when the user has not paid"
    )
    assert position("Pass cabin='economy' to X") == (False, ("cabin=economy",))
    assert stem("Pass cabin=economy to X") == stem("Pass cabin = business to X")


def test_more_supported_side_wins_a_polarity_conflict():
    a, b = item("Call get_user first", [1, 2, 3]), item("Do not call get_user first", [4])
    res = resolve([a, b])
    assert [[i.title for i in g] for g in res.kept] == [["Call get_user first"]]
    assert res.dropped == {b.item_id: res.dropped[b.item_id]}
    assert "more support (3 vs 1 distinct runs)" in res.dropped[b.item_id]
    assert res.conflicts[0]["kind"] == "polarity"


def test_value_conflict_and_ties_become_one_conditional_statement():
    a, b = item("Pass cabin=economy to X", [1, 2]), item("Pass cabin=business to X", [3, 4])
    out = OfflineMerger().merge(0, "Book flight", [a, b])
    assert len(out.items) == 1 and not out.dropped
    s = out.items[0]
    assert (
        s.title.startswith("Runs disagree")
        and "cabin=economy" in s.title
        and "cabin=business" in s.title
    )
    assert sorted(s.cluster_ids) == sorted([a.item_id, b.item_id]) and s.support == 4
    assert out.conflicts[0]["kind"] == "value" and "tie" in out.conflicts[0]["resolution"]


def test_duplicates_merge_and_support_counts_runs_once():
    a, b = (
        item("Check the fare first", [1, 2], cid="c1"),
        item("check the fare first!", [2, 3], cid="c2"),
    )
    out = OfflineMerger().merge(0, None, [a, b])
    assert (
        len(out.items) == 1
        and out.items[0].support == 3
        and out.items[0].cluster_ids == ("c1", "c2")
    )
    assert not out.conflicts


def test_same_words_in_other_sections_do_not_conflict():
    a, b = item("Call X", [1, 2]), item("Do not call X", [3], section="Refund")
    out = OfflineMerger().merge(1, None, [a, b])
    assert len(out.items) == 2 and not out.dropped and not out.conflicts
