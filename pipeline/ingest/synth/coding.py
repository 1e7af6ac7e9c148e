"""Coding family: a shell agent fixes a bug in a repository and submits a patch.

Every tool call is ``bash`` with ``{"command": ...}``; its result carries the exit code as
``<returncode>N</returncode>`` (non-zero = error). Recurring failure patterns, recorded in
``grader.injected``:

- ``tests_before_install``: the tests are run before the package is installed and fail with
  ``ModuleNotFoundError``; the agent recovers with ``pip install -e .``;
- ``edit_did_not_apply``: a ``sed`` pattern that does not match leaves the file unchanged, the
  tests fail again, and the agent reruns the identical test command (``repeated_call``) before
  giving up;
- ``no_retest``: the agent edits and submits without running the tests; hidden tests fail.
"""

from __future__ import annotations

import random

from pipeline.ingest.synth.episode import Conversation, Episode, Text, chance

SYSTEM = "You are a helpful assistant that can interact with a computer shell to solve programming tasks."
PACKAGES = [
    "textkit",
    "dateparse",
    "csvtool",
    "geomlib",
    "invoicer",
    "slugger",
    "unitconv",
    "mdtable",
]
BUGS = [
    ("strips digits from {fn} input", "[^a-z]+", "[^a-z0-9]+"),
    ("off-by-one in {fn} range end", "range(0, n - 1)", "range(0, n)"),
    ("{fn} rounds to one decimal", "round(total, 1)", "round(total, 2)"),
    ("{fn} ignores the timezone", "tz=None", "tz=timezone.utc"),
    ("{fn} compares strings with is", "is not ''", "!= ''"),
]


def out(code: int, text: str) -> str:
    return f"<returncode>{code}</returncode>\n<output>\n{text}\n</output>"


def episode(rng: random.Random, text: Text, model: str, task_no: int) -> Episode:
    pkg = rng.choice(PACKAGES)
    mod = text.code(2)
    fn = f"{text.code(1)}_{text.code(1)}"
    title, old, new = rng.choice(BUGS)
    path = f"{pkg}/{mod}.py"
    test = f"tests/test_{mod}.py"
    injected: list[str] = []
    c = Conversation(rng)
    c.system(SYSTEM)
    c.user(f"<pr_description>\n{title.format(fn=fn)}\n\n{text.prose(2)}\n</pr_description>\n\n"
           "Fix it in the source (not the tests) and submit with "
           "`echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff`.")  # fmt: skip
    listing = "\n".join(f"./{pkg}/{text.code(2)}.py" for _ in range(rng.randint(5, 14)))
    c.call("bash", {"command": "find . -name '*.py' | head -20"}, out(0, f"./{path}\n{listing}"),
           "Let me look at the repository layout.")  # fmt: skip
    c.call(
        "bash",
        {"command": f"grep -rn 'def {fn}' ."},
        out(0, f"./{path}:{rng.randint(3, 90)}:def {fn}(value, n=None):"),
    )
    body = "\n".join(f"    {text.code(2)} = {text.code(1)}({text.code(1)})  # {text.prose(1)[:60]}"
                     for _ in range(rng.randint(20, 60)))  # fmt: skip
    c.call(
        "bash",
        {"command": f"cat {path}"},
        out(0, f"def {fn}(value, n=None):\n{body}\n    return {old}\n"),
    )
    pytest = f"python -m pytest {test} -q"
    failing = out(1, f"F..\n{'=' * 20} FAILURES {'=' * 20}\n___ test_{fn} ___\n\n"
                  f"    def test_{fn}():\n>       assert {fn}('Case 42') == 'case-42'\n"
                  f"E       AssertionError: assert 'case' == 'case-42'\n\n{test}:12: AssertionError\n"
                  f"{text.prose(1)}\n1 failed, 2 passed in 0.{rng.randint(10, 99)}s")  # fmt: skip
    if chance(rng, 0.3, model):
        injected.append("tests_before_install")
        c.call("bash", {"command": pytest}, out(1, f"ImportError while importing test module '{test}'.\n"
               f"E   ModuleNotFoundError: No module named '{pkg}'"), "Run the tests first.")  # fmt: skip
        c.call(
            "bash", {"command": "pip install -e ."}, out(0, f"Successfully installed {pkg}-0.1.0")
        )
    c.call("bash", {"command": pytest}, failing, "Reproduce the failure.")
    failed = False
    if chance(rng, 0.25, model):
        injected.append("edit_did_not_apply")
        c.call(
            "bash",
            {"command": f"sed -i 's/{old}x/{new}/' {path}"},
            out(0, ""),
            "Fix the expression.",
        )
        c.call("bash", {"command": pytest}, failing)
        if chance(rng, 0.5, model):
            injected.append("repeated_call")
            for _ in range(rng.randint(2, 3)):
                c.call("bash", {"command": pytest}, failing)
        c.say("The tests still fail; I could not find the cause.")
        failed = True
    else:
        c.call(
            "bash",
            {"command": f"sed -i 's/{old}/{new}/' {path}"},
            out(0, ""),
            "Fix the expression.",
        )
        if chance(rng, 0.15, model):
            injected.append("no_retest")
            failed = rng.random() < 0.6
        else:
            c.call(
                "bash", {"command": pytest}, out(0, f"...\n3 passed in 0.{rng.randint(10, 99)}s")
            )
    diff = f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n-    return {old}\n+    return {new}\n"
    c.call("bash", {"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff"},
           out(0, f"COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n{diff}"), "Submit.")  # fmt: skip
    return Episode(
        family="coding",
        task_id=f"{pkg}__{mod}-{task_no}",
        model=model,
        outcome="failure" if failed else "success",
        messages=c.messages,
        grader={
            "gold_patch": f"-    return {old}\n+    return {new}",
            "hidden_tests": [f"{test}::test_{fn}"],
            "injected": injected,
        },  # fmt: skip
        meta={"submission": diff},
    )
