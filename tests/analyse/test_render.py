"""Rendering a trajectory for a model: faithful, numbered, within budget, secrets redacted."""

from __future__ import annotations

import re

import polars as pl

from pipeline.analyse.render import blocks_of, cut_middle, estimate_tokens, render_trajectory
from tests.analyse import builders, golden
from tests.analyse.builders import call, say, system, user

GRADER = {
    "task": {
        "actions": [{"name": "book", "kwargs": {"user_id": "u1", "flights": [{"n": "HAT1"}]}}]
    },
    "instruction": "You are u1. You want to fly on May 20.",
}


def _run(steps, **kw):
    traj, frame = builders.frames(
        [builders.run("r1", "shop", "failure", steps, task_id="7", reward=0.0, **kw)]
    )
    return traj.row(0, named=True), frame


def small():
    return _run(
        [
            system("You are a booking agent."),
            user(
                "Book me a flight. My card is 4111 and my key is sk-abcdefghijklmnopqrstuvwx1234."
            ),
            call(
                "get_user",
                {"user_id": "u1"},
                '{"email": "ann@example.com", "name": "Ann"}',
                said="Looking you up.",
            ),
            call(
                "book",
                {"user_id": "u1", "flights": [{"n": "HAT1"}]},
                "Error: payment amount does not add up",
                error=True,
            ),
            say("Sorry, the payment did not go through."),
        ],
        grader=GRADER,
    )


def long_run():
    steps = [system("Policy. " * 400), user("Please change my flight.")]
    for i in range(30):
        result = (
            f"Error: flight HAT{i:03d} not available"
            if i % 7 == 3
            else ("{" + f'"row": {i}, ' * 150 + "}")
        )
        steps.append(
            call("search", {"date": f"2024-05-{i % 28 + 1:02d}"}, result, error=i % 7 == 3)
        )
    steps.append(say("I could not find a flight."))
    return _run(steps, grader=GRADER)


def test_small_run_golden():
    row, steps = small()
    text = render_trajectory(row, steps)
    golden.check("render_small.txt", text)
    assert '[2] assistant: Looking you up.\n    tool_call get_user(user_id="u1")' in text
    assert "[5] tool_result book ERROR: Error: payment amount does not add up" in text
    assert "HIDDEN FROM THE AGENT" in text and text.index("HIDDEN") > text.index("[6] assistant")
    assert '- book(user_id="u1", flights=[{"n":"HAT1"}])' in text


def test_secrets_never_reach_the_text():
    row, steps = small()
    text = render_trajectory(row, steps)
    assert "sk-abcdefghijklmnop" not in text and "ann@example.com" not in text
    assert "[REDACTED:api-key]" in text and "[REDACTED:email]" in text


def test_long_run_fits_the_budget_and_keeps_pairs_golden():
    row, steps = long_run()
    text = render_trajectory(row, steps, budget_tokens=2000)
    golden.check("render_long_2000.txt", text)
    assert estimate_tokens(text) <= 2000
    assert re.search(r"\[\.\.\. \d+ chars cut \.\.\.\]", text)
    assert "omitted to fit the budget" in text
    shown = {int(n) for n in re.findall(r"^\[(\d+)\]", text, re.M)}
    for call_idx, result_idx in (
        steps.filter(pl.col("kind") == "tool_result")
        .select("call_step_idx", "step_idx")
        .iter_rows()
    ):
        assert (call_idx in shown) == (result_idx in shown), "a call was separated from its result"
    errors = steps.filter(pl.col("is_error")).get_column("step_idx").to_list()
    assert set(errors) <= shown, "error steps are kept first"
    assert "[0] system:" in text and "[62] assistant: I could not find a flight." in text


def test_budget_is_respected_at_every_size():
    row, steps = long_run()
    for budget in (800, 1500, 4000, 8000, 30000):
        assert estimate_tokens(render_trajectory(row, steps, budget_tokens=budget)) <= budget


def test_cut_middle_and_blocks():
    assert cut_middle("short", 10) == "short"
    cut = cut_middle("a" * 1000 + "b" * 1000, 300)
    assert cut.startswith("a") and cut.endswith("b") and "[... " in cut and len(cut) < 330
    _, steps = small()
    blocks = blocks_of(steps.sort("step_idx").to_dicts())
    assert blocks == [[0], [1], [2, 3], [4, 5], [6]]


def test_run_without_grader_has_no_grader_section():
    row, steps = _run([user("hi"), say("hello")])
    text = render_trajectory(row, steps)
    assert "Grader" not in text and text.endswith("[1] assistant: hello\n")
