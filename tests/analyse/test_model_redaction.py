"""No secret of the data reaches a model: checked on what the loopback server received."""

from __future__ import annotations

import json

from pipeline.analyse.run import analyse
from tests.analyse import builders
from tests.analyse.builders import call, say, user
from tests.analyse.scripted import answer

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"
AWS = "AKIAIOSFODNN7EXAMPLE"
PASSWORD = "Hunter2Hunter2!"
EMAIL = "ann.smith@example.org"
GOLD_PASSWORD = "G0ldPassw0rd!"
SKILL_TOKEN = "Xy9-skill-Value1"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
SECRETS = [KEY, AWS, PASSWORD, EMAIL, GOLD_PASSWORD, SKILL_TOKEN, JWT]


def runs() -> list[builders.Run]:
    grader = {
        "actions": [{"name": "login", "kwargs": {"user": "ann", "password": GOLD_PASSWORD}}],
        "instruction": f"You are Ann ({EMAIL}); your API key is {KEY}.",
    }
    steps = [
        user(f"Log me in. My key is {KEY}, my session {JWT}."),
        call("get_user", {"email": EMAIL}, f'{{"email": "{EMAIL}", "aws": "{AWS}"}}'),
        call("login", {"user": "ann", "password": PASSWORD}, "Error: wrong password", error=True),
        say("Sorry."),
    ]
    return [
        builders.run("leaky", "shop", "failure", steps, task_id=AWS, grader=grader),
        builders.run("other", "shop", "success", steps, task_id=AWS, grader=grader),
    ]


def test_every_path_to_the_model_is_redacted(loopback, lake, tmp_path):
    builders.write(lake, runs())
    skill = tmp_path / "SKILL.md"
    skill.write_text(f"# Shop\n\n## Logging in\n\nUse the service token: {SKILL_TOKEN}\n")
    loopback.responder = answer
    analyse(lake, analyst="single", settings=loopback.settings(), base_skill=skill)

    def agentic_turn(body):
        if sum(m["role"] == "assistant" for m in body["messages"]):
            return answer(body)
        specs = [
            ("read_steps", {"start": 0, "end": 7}),
            ("search_run", {"pattern": "key|password|email"}),
            ("query_pool", {"sql": "select result_content, tool_args, meta from tool_calls "
                                   "join trajectories using (trajectory_id)"}),
            ("successful_run", {}),
            ("compare_gold", {}),
            ("read_skill", {"section": "Logging in"}),
        ]  # fmt: skip
        return {"tool_calls": [{"name": n, "arguments": a} for n, a in specs]}

    loopback.responder = agentic_turn
    summary = analyse(lake, analyst="agentic", settings=loopback.settings(), base_skill=skill)
    assert summary.n_failed == 0
    tool_texts = [
        m["content"] for b in loopback.chat_requests for m in b["messages"] if m["role"] == "tool"
    ]
    errors = [t for t in tool_texts if t.startswith("error")]
    assert len(tool_texts) == 12 and errors == []
    sent = json.dumps([r["body"] for r in loopback.received])
    leaked = [s for s in SECRETS if s in sent]
    assert leaked == [], f"sent to the model: {leaked}"
    for marker in ("api-key", "aws-key", "secret", "email", "jwt"):
        assert f"[REDACTED:{marker}]" in sent
