"""A scripted WikiTableQuestions agent for the loopback server: it answers over real HTTP.

``answer(request_json)`` plays one turn from the request the server received: it finds the task
by its prompt, queries the table, and submits the gold answer on two tasks in three; on the others
it first sends a query that fails (a column that does not exist), then a valid one, then a wrong
answer. A loaded skill (``# Skill:`` in the system prompt) makes it right everywhere, unless the
skill holds a ``## Misleading`` section, which makes it wrong everywhere.
"""

from __future__ import annotations

import zlib

from pipeline.evaluate.wikitablequestions.env import WikiTableQuestions

WTQ = WikiTableQuestions()
TASKS = {t.prompt: t for split in ("train", "test") for t in WTQ.tasks(split)}


def knows(task_id: str) -> bool:
    return zlib.crc32(task_id.encode()) % 3 != 0


def answer(request: dict) -> dict:
    messages = request["messages"]
    system, task = messages[0]["content"], TASKS[messages[1]["content"]]
    right = knows(task.task_id) or "# Skill:" in system
    if "## Misleading" in system:
        right = False
    results = [m for m in messages if m["role"] == "tool"]
    turn = len(results)
    if turn == 0:
        query = "select count(*) as n from t" if right else "select missing_column from t"
        return {
            "content": "I will query the table first.",
            "tool_calls": [{"id": "q1", "name": "sql", "arguments": {"query": query}}],
        }
    if not right and turn == 1:
        query = "select * from t order by row_id limit 3"
        return {"tool_calls": [{"id": "q2", "name": "sql", "arguments": {"query": query}}]}
    submitted = task.gold if right else ["wrong"]
    return {"tool_calls": [{"id": "s1", "name": "submit", "arguments": {"answer": submitted}}]}


SKILL = """---
name: {name}
description: Answering questions over one table with SQL.
---
# Tables

## Ordering questions

For "first", "last", "previous" or "next", order by row_id.

## {second}

{text}
"""


def write_skill(root, second: str = "Counting questions", text: str = "Use count(*).") -> str:
    root.mkdir(parents=True)
    (root / "SKILL.md").write_text(SKILL.format(name=root.name, second=second, text=text))
    return str(root)
