"""Question-answering family (ReAct): Search[entity] / Lookup[keyword] / Finish[answer].

Recurring failure patterns, recorded in ``grader.injected``:

- ``exact_title_search``: searching a phrase that is not a page title gives "Could not find
  [...]. Similar: [...]"; good agents search one of the similar titles next;
- ``repeated_call``: the agent repeats the same failing search until the step limit (halted);
- ``premature_finish``: the agent answers from the first page without checking the second
  entity (a wrong answer).
"""

from __future__ import annotations

import random

from pipeline.ingest.synth.episode import Conversation, Episode, Text, chance

MAX_STEPS = 7


def episode(rng: random.Random, text: Text, model: str, task_no: int) -> Episode:
    a, b = text.code(2).capitalize(), text.code(2).capitalize()
    answer = rng.choice([a, b])
    question = f"Which of {a} and {b} was founded first? ({text.code(1)} #{task_no})"
    injected: list[str] = []
    c = Conversation(rng)
    c.user(f"Question: {question}")
    status = "CORRECT"
    first = f"{a} {text.code(1)}"
    if chance(rng, 0.4, model):
        injected.append("exact_title_search")
        miss = f"Could not find [{first}]. Similar: ['{a}', '{a} (band)', '{text.code(2)}']"
        c.call("Search", {"entity": first}, miss, f"I need to search {first}.")
        if chance(rng, 0.35, model):
            injected.append("repeated_call")
            for _ in range(MAX_STEPS - 1):
                c.call("Search", {"entity": first}, miss, f"I need to search {first} again.")
            return _episode(c, question, answer, "HALTED", injected, model, task_no)
    c.call("Search", {"entity": a}, f"{a} was founded in {rng.randint(1800, 1990)}. {text.prose(2)}",
           f"I need to search {a}.")  # fmt: skip
    if chance(rng, 0.2, model):
        injected.append("premature_finish")
        status = "INCORRECT" if rng.random() < 0.7 else "CORRECT"
        guess = answer if status == "CORRECT" else (b if answer == a else a)
        c.call("Finish", {"answer": guess}, f"Answer is {status}", f"So the answer is {guess}.")
        return _episode(c, question, answer, status, injected, model, task_no)
    c.call("Search", {"entity": b}, f"{b} was founded in {rng.randint(1800, 1990)}. {text.prose(2)}",
           f"I need to search {b} too.")  # fmt: skip
    if rng.random() < 0.3:
        c.call(
            "Lookup",
            {"keyword": "founded"},
            rng.choice(["No Results", f"(Result 1 / 1) {text.prose(1)}"]),
        )
    status = "CORRECT" if rng.random() < 0.75 else "INCORRECT"
    guess = answer if status == "CORRECT" else (b if answer == a else a)
    c.call("Finish", {"answer": guess}, f"Answer is {status}", f"So the answer is {guess}.")
    return _episode(c, question, answer, status, injected, model, task_no)


def _episode(
    c: Conversation, question: str, answer: str, status: str, injected, model, task_no
) -> Episode:
    return Episode(
        family="qa",
        task_id=f"qa-{task_no}",
        model=model,
        outcome="success" if status == "CORRECT" else "failure",
        messages=c.messages,
        grader={"correct_answer": answer, "injected": injected},
        meta={"section": status, "question": question},
    )
