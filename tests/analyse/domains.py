"""Three small pools the miner's tests read: a booking domain graded by gold actions, coding-agent
runs with shell commands, and ReAct question answering graded by a correct answer."""

from __future__ import annotations

from tests.analyse.builders import Run, call, run, say, user

SHOP = "shop"
CODE = "code"
QA = "qa"

GOLD_ORDER = {
    "user_id": "u1",
    "items": [{"sku": "A1", "qty": 3}, {"sku": "B2", "qty": 1}],
    "total": 30,
}
PAY_ERROR = "Error: payment amount does not add up, total price is 30, but paid 25"


def _order(**over) -> dict:
    return {**GOLD_ORDER, **over}


def shop_runs() -> list[Run]:
    grader = {"task": {"actions": [{"name": "place_order", "kwargs": GOLD_ORDER}]}}
    looked = [
        call("get_user", {"user_id": "u1"}, '{"name": "Ann"}'),
        call("search_items", {"q": "A1"}, "[...]"),
    ]
    wins = [
        run(
            f"s{i}",
            SHOP,
            "success",
            [
                user("order please"),
                *looked,
                call("place_order", _order(), '{"order": 1}'),
                say("done"),
            ],
            task_id="t1",
            grader=grader,
        )
        for i in range(3)
    ]
    wins.append(
        run(
            "s3",
            SHOP,
            "success",
            [
                user("order please"),
                *looked,
                call("place_order", _order(total=25), PAY_ERROR, error=True),
                call("calculate", {"expression": "27 + 3"}, "30"),
                call("place_order", _order(), '{"order": 1}'),
                say("done"),
            ],
            task_id="t1",
            grader=grader,
        )
    )
    no_write = {"task": {"actions": []}}
    wins += [
        run(
            f"n{i}",
            SHOP,
            "success",
            [
                user("refund me"),
                call("get_user", {"user_id": f"u{i}"}, "{}"),
                call("handoff", {"summary": "refund"}, "Transfer successful"),
            ],
            task_id="t2",
            grader=no_write,
        )
        for i in range(3)
    ]
    fails = [
        run(
            "f_args",
            SHOP,
            "failure",
            [
                user("order please"),
                *looked,
                call(
                    "place_order",
                    _order(items=[{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}]),
                    '{"order": 2}',
                ),
                say("done"),
            ],
            task_id="t1",
            grader=grader,
        ),
        run(
            "f_handoff",
            SHOP,
            "failure",
            [
                user("order please"),
                call("get_user", {"user_id": "u1"}, "{}"),
                call("handoff", {"summary": "wants an order"}, "Transfer successful"),
            ],
            task_id="t1",
            grader=grader,
        ),
        run(
            "f_extra",
            SHOP,
            "failure",
            [
                user("order please"),
                *looked,
                call("place_order", _order(), '{"order": 3}'),
                call("cancel_order", {"order_id": 3}, "cancelled"),
                say("done"),
            ],
            task_id="t1",
            grader=grader,
        ),
        run(
            "f_retry",
            SHOP,
            "failure",
            [
                user("order please"),
                *looked,
                call("place_order", _order(total=25), PAY_ERROR, error=True),
                call("place_order", _order(total=25), PAY_ERROR, error=True),
                say("sorry, it failed"),
            ],
            task_id="t1",
            grader=grader,
        ),
    ]
    # cancel_order appears in a gold list elsewhere, so the pool knows it writes.
    cancel_gold = {"task": {"actions": [{"name": "cancel_order", "kwargs": {"order_id": 9}}]}}
    wins += [
        run(
            f"c{i}",
            SHOP,
            "success",
            [
                user("cancel 9"),
                call("get_user", {"user_id": "u9"}, "{}"),
                call("cancel_order", {"order_id": 9}, "cancelled"),
            ],
            task_id="t3",
            grader=cancel_gold,
        )
        for i in range(3)
    ]
    return wins + fails


PYTEST = {"command": "python -m pytest -q"}
NO_MODULE = "Traceback (most recent call last):\n  File \"t.py\", line 1\nModuleNotFoundError: No module named 'requests'"


def code_runs() -> list[Run]:
    wins = [
        run(
            f"k{i}",
            CODE,
            "success",
            [
                user("fix the failing test"),
                call("bash", {"command": "cat src/app.py"}, "def total(): ..."),
                call("bash", PYTEST, NO_MODULE, error=True),
                call(
                    "bash",
                    {"command": f"pip install requests=={i}.0"},
                    "Successfully installed requests",
                ),
                call("bash", PYTEST, "4 passed"),
                call("submit", {}, "submitted"),
            ],
            task_id=f"k{i}",
        )
        for i in range(4)
    ]
    fails = [
        run(
            "k_loop",
            CODE,
            "failure",
            [
                user("fix the failing test"),
                call("bash", {"command": "cat src/app.py"}, "def total(): ..."),
                call("bash", PYTEST, NO_MODULE, error=True),
                call("bash", PYTEST, NO_MODULE, error=True),
                call("bash", PYTEST, NO_MODULE, error=True),
                call("bash", {"command": "ls"}, "src tests"),
            ],
            task_id="k9",
        ),
    ]
    return wins + fails


def _nf(q: str, similar: list[str]) -> str:
    return f"Could not find [{q}]. Similar: {similar!r}."


def qa_runs() -> list[Run]:
    wins = [
        run(
            f"q{i}",
            QA,
            "success",
            [
                user(f"Question: who {i}?"),
                call(
                    "Search",
                    {"entity": f"Band {i}"},
                    _nf(f"Band {i}", [f"Band {i} (band)", "Other"]),
                    error=True,
                    said="I search.",
                ),
                call(
                    "Search",
                    {"entity": f"Band {i} (band)"},
                    f"Band {i} is a band led by Person {i}.",
                ),
                call("Finish", {"answer": f"Person {i}"}, "Answer is CORRECT"),
            ],
            task_id=f"q{i}",
            grader={"correct_answer": f"Person {i}"},
        )
        for i in range(3)
    ]
    fails = [
        run(
            "q_extra",
            QA,
            "failure",
            [
                user("Question: which station?"),
                call("Search", {"entity": "KXII"}, "KXII is a station, channel 12."),
                call("Finish", {"answer": "KXII 12"}, "Answer is INCORRECT"),
            ],
            task_id="q7",
            grader={"correct_answer": "KXII"},
        ),
        run(
            "q_seen",
            QA,
            "failure",
            [
                user("Question: where is Papa Gino's based?"),
                call(
                    "Search",
                    {"entity": "Papa Gino's"},
                    "Papa Gino's is a restaurant chain based in Dedham, Massachusetts.",
                ),
                call("Finish", {"answer": "Boston"}, "Answer is INCORRECT"),
            ],
            task_id="q8",
            grader={"correct_answer": "Dedham, Massachusetts"},
        ),
        run(
            "q_halt",
            QA,
            "failure",
            [
                user("Question: what does VIVA stand for?"),
                call(
                    "Search",
                    {"entity": "VIVA Media AG"},
                    _nf("VIVA Media AG", ["VIVA Plus", "Vauxhall Viva"]),
                    error=True,
                ),
                call(
                    "Search",
                    {"entity": "VIVA Media AG 2004"},
                    _nf("VIVA Media AG 2004", ["VIVA Plus"]),
                    error=True,
                ),
                call(
                    "Search",
                    {"entity": "VIVA Media AG 2004 name"},
                    _nf("VIVA Media AG 2004 name", ["Opel"]),
                    error=True,
                ),
            ],
            task_id="q9",
            grader={"correct_answer": "Gesellschaft mit beschränkter Haftung"},
        ),
    ]
    return wins + fails


SWE = "swe"


def wrapped(code: int, output: str) -> str:
    """A shell result as mini-swe-agent reports it."""
    return f"<returncode>{code}</returncode>\n<output>\n{output}\n</output>"


def shell_runs(n: int = 8) -> list[Run]:
    """mini-swe-agent-like runs: after a look around, a script written with a heredoc fails on a
    missing module; half the runs install it and rerun the script (and succeed), the others
    search with grep (no match, no output) or list files, then write a line of prose as a command
    and stop. Each run names its script differently."""
    out = []
    for i in range(n):
        script = f"repro_{i}.py"
        trace = (
            f'Traceback (most recent call last):\n  File "/repo/{script}", line 1, in <module>\n'
            f"    import mod{i}\nModuleNotFoundError: No module named 'mod{i}'"
        )
        steps = [
            user("fix the bug described in the issue"),
            call("bash", {"command": "git status --short"}, wrapped(0, "")),
            call("bash", {"command": "ls -la src"}, wrapped(0, "app.py")),
            call(
                "bash",
                {"command": f"cat <<'EOF' > {script}\nimport mod{i}\nprint('No idea')\nEOF"},
                wrapped(0, ""),
            ),
            call("bash", {"command": f"python {script}"}, wrapped(1, trace), error=True),
        ]
        if i % 2 == 0:
            steps += [
                call(
                    "bash", {"command": f"pip install mod{i}"}, wrapped(0, "Successfully installed")
                ),
                call("bash", {"command": f"python {script}"}, wrapped(0, "ok")),
            ]
        else:
            search = (
                call("bash", {"command": f"grep -rn 'def f{i}' src"}, wrapped(1, ""), error=True)
                if i % 4 == 1
                else call("bash", {"command": "ls -la src"}, wrapped(0, "app.py"))
            )
            steps += [
                search,
                call(
                    "bash",
                    {"command": "No changes are needed here. Let me submit."},
                    wrapped(127, "bash: line 1: No: command not found"),
                    error=True,
                ),
            ]
        out.append(
            run(f"w{i}", SWE, "success" if i % 2 == 0 else "failure", steps, task_id=f"w{i}")
        )
    return out
