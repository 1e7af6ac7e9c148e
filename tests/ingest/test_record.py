"""The shared step rules: call/result linking, ids, arguments, outcomes, error flags."""

from __future__ import annotations

import pytest

from pipeline.ingest.record import (
    StepBuilder,
    canonical_args,
    looks_like_error,
    normalize_outcome,
    outcome_from_reward,
    text_of,
)

ROLE, KIND, CONTENT, NAME, ARGS, CALL_ID, CALL_IDX, IS_ERROR, MSG = range(9)


def test_reused_call_ids_are_made_unique_and_results_link_to_the_latest_open_call():
    b = StepBuilder()
    b.call("search", {"q": 1}, "c1", 0)
    b.result("c1", "first", 1)
    b.call("search", {"q": 2}, "c1", 2)  # the source reuses c1
    b.call("book", {}, "c2", 2)
    b.result("c2", "booked", 3)
    b.result("c1", "second", 4)
    steps = b.steps
    assert [s[CALL_ID] for s in steps] == ["c1", "c1", "c1#2", "c2", "c2", "c1#2"]
    assert [s[CALL_IDX] for s in steps] == [None, 0, None, None, 3, 2]
    assert steps[5][NAME] == "search"  # a result takes its tool name from the call


def test_results_without_ids_answer_the_latest_open_call():
    b = StepBuilder()
    first = b.call("a", None, None, 0)
    b.call("b", None, None, 0)
    b.result(None, "for b", 1)
    b.result(None, "for a", 2)
    assert first == "call_1"
    assert [s[CALL_IDX] for s in b.steps[2:]] == [1, 0]
    assert [s[NAME] for s in b.steps[2:]] == ["b", "a"]


def test_an_orphan_result_keeps_its_id_and_has_no_call():
    b = StepBuilder()
    b.result("ghost", "??", 0)
    assert b.steps[0][CALL_ID] == "ghost" and b.steps[0][CALL_IDX] is None


def test_error_flag_from_source_wins_over_the_text():
    b = StepBuilder()
    b.call("t", {}, "x", 0)
    b.result("x", "Error: nope", 1, is_error=False)
    b.call("t", {}, "y", 2)
    b.result("y", "Error: nope", 3)
    assert [b.steps[1][IS_ERROR], b.steps[3][IS_ERROR]] == [False, True]


def test_arguments_are_canonical_json():
    assert canonical_args('{"b": 1, "a": [1, 2]}') == '{"a":[1,2],"b":1}'
    assert canonical_args({"é": "ü"}) == '{"é":"ü"}'
    assert canonical_args("") == "{}" and canonical_args(None) == "{}"
    assert canonical_args("{broken") == '"{broken"'  # kept, as a JSON string


@pytest.mark.parametrize(
    ("value", "expected"),
    [("success", "success"), ("PASS", "success"), (True, "success"), ("resolved", "success"),
     ("failed", "failure"), (False, "failure"), ("halted", "failure"), (0, "failure"),
     (1.0, "success"), ("unknown", None), (None, None), ("", None)],
)  # fmt: skip
def test_outcome_spellings(value, expected):
    assert normalize_outcome(value) == expected


def test_unreadable_outcome_is_an_error():
    with pytest.raises(ValueError, match="not one of success/failure"):
        normalize_outcome("maybe")


def test_reward_threshold():
    assert outcome_from_reward(1.0) == "success"
    assert outcome_from_reward(0.99) == "failure"
    assert outcome_from_reward(0.5, threshold=0.5) == "success"
    assert outcome_from_reward(None) is None


def test_error_text_and_content_parts():
    assert looks_like_error("Error: payment amount does not add up")
    assert looks_like_error("Traceback (most recent call last):\n ...")
    assert looks_like_error('{"error": "not found"}')
    assert not looks_like_error("") and not looks_like_error("No errors found")
    assert (
        text_of([{"type": "text", "text": "a"}, {"type": "image_url"}, "b"]) == "a\n\n[image]\n\nb"
    )


def test_exit_codes_in_text():
    assert looks_like_error("<returncode>1</returncode>\n<output>\nboom\n</output>")
    assert not looks_like_error("<returncode>0</returncode>\n<output>\nok\n</output>")
    assert looks_like_error("Exit code: 2\nnot found") and not looks_like_error("exit code 0")
