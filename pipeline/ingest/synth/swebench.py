"""swebench family: a mini-swe-agent-style shell agent fixes a bug, several attempts per task,
with behaviour effects planted on the outcome so that a contrastive miner can be scored.

Builds ``Episode``s only (the writers put them in files). Run i is attempt i % RUNS_PER_TASK of
task i // RUNS_PER_TASK; a task (package, module, test file, bug, difficulty) comes from its own
seeded generator, so all its attempts share it and its task_id whatever shard they land in.
Each run draws its behaviours independently, then succeeds with probability
sigmoid(difficulty + the planted effects of the behaviours it shows):

- ``reproduced_before_edit`` (+): a heredoc ``reproduce_issue.py``, run before the first edit;
- ``tested_after_last_edit`` (+): the tests run after the last source edit; without it no test
  call follows the last edit (tests may still run earlier);
- ``edited_tests`` (-): a ``sed -i`` on the test file (after the first source edit);
- ``used_navigate``, ``used_install``, ``viewed_before_edit`` (null): ``ls``, ``pip install -e .``,
  ``cat`` / ``sed -n`` of the source before the first edit;
- ``used_search`` (null, confounded): ``grep -rn`` / ``find``, far likelier on hard tasks, so it
  looks harmful pooled and does nothing within a task.

Every call is ``bash`` with ``{"command": ...}``; results carry ``<returncode>N</returncode>``.
``grader.injected`` lists the behaviours a run showed and is all the grader's view holds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from pipeline.ingest.synth.coding import PACKAGES, SYSTEM, out
from pipeline.ingest.synth.episode import MODELS, Conversation, Episode, Text

RUNS_PER_TASK = 8
EFFECTS = {  # logit added to the task's difficulty when a run shows the behaviour
    "reproduced_before_edit": 1.6,
    "tested_after_last_edit": 1.6,
    "edited_tests": -1.6,
    "used_navigate": 0.0,
    "used_install": 0.0,
    "viewed_before_edit": 0.0,
    "used_search": 0.0,
}
PLANTED: dict[str, int] = {name: (e > 0) - (e < 0) for name, e in EFFECTS.items()}
CONFOUNDED = {"used_search"}
# Careful habits are likelier in stronger models and sloppy ones in weaker (episode.MODELS holds
# each model's weakness). Nulls do not follow the model: through it they would inherit the
# planted behaviours' effects and stop being null.
CAREFUL = {"reproduced_before_edit": 0.45, "tested_after_last_edit": 0.5}
SLOPPY = {"edited_tests": 0.25}
NULLS = {"used_navigate": 0.5, "used_install": 0.35, "viewed_before_edit": 0.6}
SEARCH_ON_HARD, SEARCH_ON_EASY = 0.8, 0.2  # by task difficulty only: the confounded null

MODULES = ["parser", "render", "units", "dates", "slug", "table", "money", "tokens", "paths"]
VERBS = ["parse", "format", "normalize", "split", "convert", "render", "clean", "merge"]
NOUNS = ["value", "amount", "header", "row", "label", "span", "record", "name"]
BUGS = [  # (title, buggy text, fixed text): sed-safe, no quotes or slashes
    ("{fn} drops digits from its input", "[^a-z]", "[^a-z0-9]"),
    ("off-by-one at the end of the range in {fn}", "range(0, n - 1)", "range(0, n)"),
    ("{fn} rounds to one decimal place", "round(total, 1)", "round(total, 2)"),
    ("{fn} ignores the timezone", "tz=None", "tz=timezone.utc"),
    ("{fn} treats zero as missing", "if not value:", "if value is None:"),
]
ASIDE_EDITS = [  # edits beside the fix, so runs make 1-3 source edits
    ("value.strip()", "str(value).strip()"),
    ("return result", "return list(result)"),
    ("items = []", "items = list()"),
    ("n=None", "n=0"),
]


@dataclass(frozen=True)
class Task:
    task_id: str
    package: str
    module: str
    fn: str
    bug: tuple[str, str, str]
    difficulty: float  # the success logit of a run that shows no planted behaviour
    word: str  # the test expects "<word>-42" and the bug gives "<word>"

    @property
    def path(self) -> str:
        return f"{self.package}/{self.module}.py"

    @property
    def test(self) -> str:
        return f"tests/test_{self.module}.py"


def task(seed: int, k: int) -> Task:
    rng = random.Random(f"swebench-task:{seed}:{k}")
    package = rng.choice(PACKAGES)
    return Task(
        task_id=f"{package}__{package}-{1000 + k}",
        package=package,
        module=rng.choice(MODULES),
        fn=f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}",
        bug=rng.choice(BUGS),
        difficulty=rng.uniform(-1.5, 1.5),
        word=rng.choice(NOUNS),
    )


def behaviours(rng: random.Random, model: str, t: Task) -> list[str]:
    weakness = MODELS[model]
    p = {name: min(0.95, base / weakness) for name, base in CAREFUL.items()}
    p |= {name: min(0.95, base * weakness) for name, base in SLOPPY.items()}
    p |= NULLS
    p["used_search"] = SEARCH_ON_HARD if t.difficulty < 0 else SEARCH_ON_EASY
    return [name for name in EFFECTS if rng.random() < p[name]]


def _failing_tests(rng: random.Random, t: Task, exitfirst: bool) -> str:
    summary = "1 failed, 2 passed" if not exitfirst else "1 failed, 1 passed"
    return out(1, f"{'.F.' if not exitfirst else '.F'}\n{'=' * 20} FAILURES {'=' * 20}\n"
                  f"___ test_{t.fn} ___\n\n    def test_{t.fn}():\n"
                  f">       assert {t.fn}('{t.word.title()} 42') == '{t.word}-42'\n"
                  f"E       AssertionError: assert '{t.word}' == '{t.word}-42'\n\n"
                  f"{t.test}:12: AssertionError\n"
                  f"{summary} in 0.{rng.randint(10, 99)}s")  # fmt: skip


def _passing_tests(rng: random.Random) -> str:
    return out(0, f"...\n3 passed in 0.{rng.randint(10, 99)}s")


def _diff(path: str, edits: list[tuple[str, str]]) -> str:
    hunks = "".join(f"-    {before}\n+    {after}\n" for before, after in edits)
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{hunks}"


def episode(rng: random.Random, text: Text, model: str, seed: int, task_no: int) -> Episode:
    t = task(seed, task_no)
    shown = behaviours(rng, model, t)
    logit = t.difficulty + sum(EFFECTS[name] for name in shown)
    success = rng.random() < 1 / (1 + math.exp(-logit))
    title, old, new = t.bug
    c = Conversation(rng)
    c.system(SYSTEM)
    c.user(f"<pr_description>\n{title.format(fn=t.fn)}\n\n`{t.fn}('{t.word.title()} 42')` "
           f"should return `'{t.word}-42'` but returns `'{t.word}'`.\n</pr_description>\n\n"
           "The repository is in /testbed. Fix it in the source (not the tests) and submit with "
           "`echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff`.")  # fmt: skip
    if "used_navigate" in shown:
        listing = "\n".join(
            ["README.md", "pyproject.toml", t.package, "tests"]
            + [f"{text.code(1)}.cfg" for _ in range(rng.randint(0, 2))]
        )
        command = rng.choice(["ls -la", "cd /testbed && ls"])
        c.call("bash", {"command": command}, out(0, listing), "Let me look around the repository.")
    if "used_search" in shown:
        if rng.random() < 0.5:
            line = f"./{t.path}:{rng.randint(3, 90)}:def {t.fn}(value, n=None):"
            c.call("bash", {"command": f"grep -rn 'def {t.fn}' ."}, out(0, line),
                   f"Find where {t.fn} is defined.")  # fmt: skip
        else:
            c.call("bash", {"command": f"find . -name '*.py' | grep {t.module}"},
                   out(0, f"./{t.path}\n./{t.test}"), "Find the module.")  # fmt: skip
    if "used_install" in shown:
        c.call("bash", {"command": "pip install -e ."},
               out(0, f"Successfully installed {t.package}-0.1.0"), "Install the package.")  # fmt: skip
    if "viewed_before_edit" in shown:
        body = "\n".join(f"    {text.code(2)} = {text.code(1)}({text.code(1)})"
                         for _ in range(rng.randint(10, 40)))  # fmt: skip
        command = rng.choice([f"cat {t.path}", f"sed -n '1,80p' {t.path}"])
        c.call("bash", {"command": command},
               out(0, f"def {t.fn}(value, n=None):\n{body}\n    return {old}"), "Read the source.")  # fmt: skip
    if rng.random() < 0.35:  # an early test run, which is none of the behaviours
        c.call("bash", {"command": f"python -m pytest {t.test} -q"}, _failing_tests(rng, t, False),
               "Run the existing tests.")  # fmt: skip
    if "reproduced_before_edit" in shown:
        body = (f"\nfrom {t.package}.{t.module} import {t.fn}\n\n"
                f"result = {t.fn}('{t.word.title()} 42')\nprint(result)\n"
                f"assert result == '{t.word}-42', result\nEOF")  # fmt: skip
        script = f"cat <<'EOF' > reproduce_issue.py{body}"
        failure = out(1, f"{t.word}\nTraceback (most recent call last):\n  File "
                      f"\"/testbed/reproduce_issue.py\", line 5, in <module>\n"
                      f"    assert result == '{t.word}-42', result\nAssertionError: {t.word}")  # fmt: skip
        if rng.random() < 0.5:
            # chained on the heredoc's first line: bash ends a heredoc only at a line that
            # holds the delimiter alone
            chained = f"cat <<'EOF' > reproduce_issue.py && python reproduce_issue.py{body}"
            c.call("bash", {"command": chained}, failure,
                   "Write a script that reproduces the issue and run it.")  # fmt: skip
        else:
            c.call("bash", {"command": script}, out(0, ""), "Write a reproduction script.")
            c.call("bash", {"command": "python reproduce_issue.py"}, failure)
    edits = rng.sample(ASIDE_EDITS, rng.randint(0, 2))
    edits.insert(rng.randint(0, len(edits)), (old, new))
    for n, (before, after) in enumerate(edits):
        c.call("bash", {"command": f"sed -i 's/{before}/{after}/' {t.path}"}, out(0, ""),
               "Fix the expression." if before == old else "Tidy the code around it.")  # fmt: skip
        if n == 0 and "edited_tests" in shown:
            c.call("bash", {"command": f"sed -i 's/{t.word}-42/{t.word}/' {t.test}"}, out(0, ""),
                   "The test expectation looks wrong; adjust it.")  # fmt: skip
        if n < len(edits) - 1 and rng.random() < 0.4:  # more edits follow: the tests still fail
            c.call(
                "bash", {"command": f"python -m pytest {t.test} -q"}, _failing_tests(rng, t, False)
            )
    if "tested_after_last_edit" in shown:
        exitfirst = rng.random() < 0.5
        command = f"pytest {t.test} -x" if exitfirst else f"python -m pytest {t.test} -q"
        result = _passing_tests(rng) if success else _failing_tests(rng, t, exitfirst)
        c.call("bash", {"command": command}, result, "Run the tests again.")
        if not success:
            c.say("One test still fails, but I think the fix is right; submitting.")
    diff = _diff(t.path, edits)
    if "edited_tests" in shown:
        diff += _diff(t.test, [(f"{t.word}-42", t.word)])
    c.call("bash", {"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff"},
           out(0, f"COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n{diff}"), "Submit.")  # fmt: skip
    return Episode(
        family="swebench",
        task_id=t.task_id,
        model=model,
        outcome="success" if success else "failure",
        messages=c.messages,
        grader={"injected": shown},
        meta={"submission": diff, "shared_task": True},
    )
