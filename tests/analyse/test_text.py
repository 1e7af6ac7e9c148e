"""Helpers the rules share: error patterns, command heads, how a retry changed its argument."""

from __future__ import annotations

import pytest

from pipeline.analyse.miner.text import command_head, error_pattern, quote, string_change


@pytest.mark.parametrize(
    "message,pattern",
    [
        (
            "Error: flight HAT030 not available on date 2024-05-13",
            "Error: flight <id> not available on date <date>",
        ),
        (
            "Error: payment amount does not add up, total price is 375, but paid 299",
            "Error: payment amount does not add up, total price is <n>, but paid <n>",
        ),
        (
            "Could not find [VIVA Media AG]. Similar: ['Paramount', 'VIVA Plus']",
            "Could not find [...]. Similar: [...]",
        ),
        (
            "Traceback (most recent call last):\n  File \"x.py\", line 3\nModuleNotFoundError: No module named 'requests'",
            "ModuleNotFoundError: No module named '...'",
        ),
        (
            "FAILED tests/test_api.py::test_get - AssertionError: assert 404 == 200",
            "FAILED <path>::test_get - AssertionError: assert <n> == <n>",
        ),
        ("bash: pytset: command not found", "bash: pytset: command not found"),
    ],
)
def test_error_pattern(message, pattern):
    assert error_pattern(message) == pattern


@pytest.mark.parametrize(
    "command,head",
    [
        ("python -m pytest -q tests/", "python -m pytest"),
        ("pip install requests", "pip install"),
        ("cd /repo && pytest -x", "pytest"),
        ("FOO=1 pytest -x", "pytest"),
        ("cat src/app.py", "cat"),
        ("git diff HEAD", "git diff"),
    ],
)
def test_command_head(command, head):
    assert command_head(command) == head


def test_string_change():
    sugg = "Could not find [Argentine footballer]. Similar: ['El Turco', 'Julio Cruz (Argentine footballer)']"
    assert string_change("Argentine footballer", "Julio Cruz (Argentine footballer)", sugg) == (
        "a value copied from the error's suggestions"
    )
    assert (
        string_change('"Wallace and Gromit"', "Wallace and Gromit")
        == "the same value without quotes"
    )
    assert string_change("VIVA Media AG 2004", "VIVA Media AG") == "a shorter value (words dropped)"
    assert string_change("VIVA Media AG", "VIVA Media AG 2004") == "a longer value (words added)"
    assert string_change("x", "x") == "the same value"


def test_quote_picks_the_quote_mark_the_text_does_not_use():
    assert quote("plain") == "'plain'"
    assert quote("No module named 'x'") == "\"No module named 'x'\""
    assert quote({"a": 1}) == '{"a":1}'
