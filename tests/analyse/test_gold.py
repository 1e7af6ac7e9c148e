"""Diffing calls against gold actions: nested arguments compared sensibly, findings named right."""

from __future__ import annotations

from pipeline.analyse.miner.gold import Call, GoldAction, diff_args, gold_diff

GOLD = {
    "flights": [
        {"flight_number": "HAT136", "date": "2024-05-20"},
        {"flight_number": "HAT039", "date": "2024-05-20"},
    ],
    "payment_methods": [
        {"payment_id": "certificate_7504069", "amount": 250},
        {"payment_id": "credit_card_4421486", "amount": 5},
    ],
    "passengers": [{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05"}],
    "nonfree_baggages": 0,
    "insurance": "no",
}


def test_equal_after_normalising_numbers_and_key_order():
    given = {k: GOLD[k] for k in reversed(list(GOLD))}
    given["payment_methods"] = [
        {"amount": 250.0, "payment_id": "certificate_7504069"},
        GOLD["payment_methods"][1],
    ]
    assert diff_args(given, GOLD) == []


def test_nested_lists_are_matched_by_their_identifying_field():
    given = {
        **GOLD,
        "flights": [GOLD["flights"][0], {"flight_number": "HAT039", "date": "2024-05-21"}],
        "payment_methods": [
            GOLD["payment_methods"][0],
            {"payment_id": "credit_card_4421486", "amount": 55},
        ],
        "passengers": [
            *GOLD["passengers"],
            {"first_name": "Bo", "last_name": "Li", "dob": "1991-01-01"},
        ],
        "nonfree_baggages": 1,
        "note": "x",
    }
    got = {(d.path, d.kind): (d.given, d.expected) for d in diff_args(given, GOLD)}
    assert got == {
        ("flights[HAT039].date", "value"): ("2024-05-21", "2024-05-20"),
        ("payment_methods[credit_card_4421486].amount", "value"): (55, 5),
        ("passengers[Bo]", "extra"): (
            {"first_name": "Bo", "last_name": "Li", "dob": "1991-01-01"},
            None,
        ),
        ("nonfree_baggages", "value"): (1, 0),
        ("note", "extra"): ("x", None),
    }
    patterns = {d.pattern for d in diff_args(given, GOLD)}
    assert "payment_methods[].amount" in patterns and "flights[].date" in patterns


def test_replaced_list_element_reads_as_one_change():
    same = {"flight_number": "HAT001", "date": "2024-05-20"}
    given = {"flights": [same, {"flight_number": "HAT005", "date": "2024-05-22"}]}
    expected = {"flights": [same, {"flight_number": "HAT002", "date": "2024-05-21"}]}
    [d] = diff_args(given, expected)
    assert (d.path, d.kind, d.given["flight_number"], d.expected["flight_number"]) == (
        "flights[]",
        "value",
        "HAT005",
        "HAT002",
    )
    # Matched on the field they share most: the flight of that date had the wrong number.
    on_date = diff_args(
        {"flights": [same, {"flight_number": "HAT005", "date": "2024-05-21"}]},
        {"flights": [same, {"flight_number": "HAT002", "date": "2024-05-21"}]},
    )
    assert [(x.path, x.given) for x in on_date] == [("flights[2024-05-21].flight_number", "HAT005")]
    # Nothing in common: the elements are compared in place, field by field.
    lone = diff_args({"f": [{"n": "A", "d": 1}]}, {"f": [{"n": "B", "d": 2}]})
    assert [(x.path, x.given, x.expected) for x in lone] == [("f[0].n", "A", "B"), ("f[0].d", 1, 2)]


def test_lists_of_values_compare_as_multisets():
    assert diff_args([1, 2, 3], [3, 2, 1]) == []
    [d] = diff_args(["a", "b"], ["a", "c"])
    assert (d.given, d.expected, d.kind) == ("b", "c", "value")
    missing = diff_args({}, {"k": 1})
    assert [(m.path, m.kind) for m in missing] == [("k", "missing")]


def _c(step, tool, args, err=False):
    return Call(step, tool, args, err, "Error: x" if err else None, step + 1)


def test_gold_diff_kinds():
    gold = [
        GoldAction(0, "book", {"a": 1}),
        GoldAction(1, "cancel", {"id": "R1"}),
        GoldAction(2, "pay", {"n": 5}),
        GoldAction(3, "lookup", {"q": "x"}),
    ]
    calls = [
        _c(2, "lookup", {"q": "other"}),
        _c(4, "book", {"a": 2}),
        _c(6, "pay", {"n": 5}, err=True),
        _c(8, "cancel", {"id": "R2"}),
        _c(10, "cancel", {"id": "R3"}),
        _c(12, "refund", {"id": "R3"}),
    ]
    found = gold_diff(
        calls, gold, read_only={"lookup"}, write_tools={"book", "cancel", "pay", "refund"}
    )
    kinds = [(f.kind, f.tool, f.call.step_idx if f.call else None) for f in found]
    assert kinds == [
        ("wrong_args", "book", 4),
        ("wrong_args", "cancel", 8),
        ("failed", "pay", 6),
        ("extra", "cancel", 10),
        ("extra", "refund", 12),
    ]
    assert [(d.path, d.given, d.expected) for d in found[0].diffs] == [("a", 2, 1)]


def test_gold_diff_missing_and_order():
    gold = [GoldAction(0, "a", {}), GoldAction(1, "b", {}), GoldAction(2, "c", {})]
    found = gold_diff(
        [_c(2, "b", {}), _c(4, "a", {})], gold, read_only=set(), write_tools={"a", "b", "c"}
    )
    assert [(f.kind, f.tool) for f in found] == [("missing", "c"), ("order", "a")]
    assert [c.tool_name for c in found[1].attempts] == ["a", "b"]
