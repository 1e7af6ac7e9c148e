"""Helpers the rules share: error patterns, command heads, how a retry changed its argument."""

from __future__ import annotations

import pytest

from pipeline.analyse.miner.text import (
    command_head,
    error_line,
    error_pattern,
    quote,
    string_change,
)

TRACE = (
    'Traceback (most recent call last):\n  File "/repo/reproduce.py", line 1, in <module>\n'
    "    import textkit\nModuleNotFoundError: No module named 'textkit'"
)


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
            "AssertionError: assert <n> == <n>",
        ),
        ("bash: pytset: command not found", "bash: pytset: command not found"),
        ("Traceback (most recent call last):\nAssertionError: span", "AssertionError: <value>"),
    ],
)
def test_error_pattern(message, pattern):
    assert error_pattern(message) == pattern


@pytest.mark.parametrize(
    "result,line,pattern",
    [
        (  # mini-swe-agent
            f"<returncode>1</returncode>\n<output>\n{TRACE}\n</output>",
            "ModuleNotFoundError: No module named 'textkit'",
            "ModuleNotFoundError: No module named '...'",
        ),
        (  # a pytest report: the exception, not the test's path or the summary line
            "<returncode>1</returncode>\n<output>\nF..\n    def test_slug():\n"
            "E       ModuleNotFoundError: No module named 'textkit'\n\n"
            "tests/test_slug.py:12: ModuleNotFoundError\n1 failed, 2 passed in 0.31s</output>",
            "ModuleNotFoundError: No module named 'textkit'",
            "ModuleNotFoundError: No module named '...'",
        ),
        (  # a long output mini-swe-agent cut: its warning is no error of the command
            "<returncode>1</returncode>\n<warning>\nThe output of your last command was too long.\n"
            "</warning><output_head>\nrunning\n</output_head>\n<elided_chars>\n"
            "9000 characters elided\n</elided_chars>\n<output_tail>\n"
            "error: pathspec 'main.py' did not match any file(s) known to git\n</output_tail>",
            "error: pathspec 'main.py' did not match any file(s) known to git",
            "error: pathspec '...' did not match any file(s) known to git",
        ),
        (  # OpenHands
            f"{TRACE}\n[Python Interpreter: /usr/bin/python]\n[Command finished with exit code 1]",
            "ModuleNotFoundError: No module named 'textkit'",
            "ModuleNotFoundError: No module named '...'",
        ),
        (  # SWE-agent
            "cat: src/missing.py: No such file or directory\n(Open file: n/a)\n"
            "(Current directory: /repo)\nbash-$",
            "cat: src/missing.py: No such file or directory",
            "cat: <path>: No such file or directory",
        ),
        (  # the exit code is the only sign of the error
            "<returncode>1</returncode>\n<output>\n</output>",
            "exit code 1, no output",
            "exit code 1, no output",
        ),
        (
            "<returncode>2</returncode>\n<output>\nchecking 3 files\nnothing to do\n</output>",
            "exit code 2: nothing to do",
            "exit code 2",
        ),
    ],
)
def test_shell_results_are_read_without_their_wrapper(result, line, pattern):
    assert error_line(result) == line
    assert error_pattern(result) == pattern


@pytest.mark.parametrize(
    "command,head",
    [
        ("python -m pytest -q tests/", "python -m pytest"),
        ("cd /testbed && python -m pytest -x tests/a.py 2>&1 | tail -30", "python -m pytest"),
        ("pytest -x tests/a.py | tail -30", "pytest"),
        ("find . -name '*.py' | grep mod", "find"),
        ("pip install requests", "pip install"),
        ("cd /repo && pytest -x", "pytest"),
        ("FOO=1 pytest -x", "pytest"),
        ("cat src/app.py", "cat"),
        ("git diff HEAD", "git diff"),
        ("python reproduce.py", "python"),  # an argument, not a subcommand
        ("sudo pip install -e .", "pip install"),
        ("(cd repo && ./run_tests.sh -x)", "run_tests.sh"),
        ("for f in *.py; do python $f; done", "python"),
        ("# look first\nls -la", "ls"),
        ("grep -rn foo \\\n  src", "grep"),
        ("cd /repo", "cd"),
        # a heredoc's body is data: its words are not the commands that run
        # its status is the last program's: the script's, not the heredoc's
        ("cat <<'EOF' > fix.py\nNo idea\nimport os; print(os)\nEOF\npython fix.py", "python"),
        ("cat <<'EOF' > fix.py && python fix.py\nimport os\nEOF", "python"),
        ("cat <<'EOF' > fix.py\nNo idea\nEOF", "cat"),
        ("python - <<EOF\nfrom x import y\nEOF", "python"),
        # prose is no command
        ("No changes are needed here. Let me submit.", ""),
        ("I will check the file: cat setup.py", ""),
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
