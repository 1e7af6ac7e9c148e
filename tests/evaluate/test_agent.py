"""The tool-calling loop over a scripted model: submit, faults, turn limit, the steps it records."""

from __future__ import annotations

import asyncio
import json

import pytest

from pipeline.evaluate.agent import NUDGE, AgentSettings, run_episode
from pipeline.evaluate.skill import Skill
from pipeline.evaluate.wikitablequestions.env import WikiTableQuestions
from tests.evaluate.fakes import FakeLLM, tool_call


@pytest.fixture(scope="module")
def wtq():
    return WikiTableQuestions()


@pytest.fixture
def task(wtq):
    return next(t for t in wtq.tasks("train") if t.task_id == "nt-134")


def script(*messages):
    """A policy answering the n-th call of an episode with the n-th message."""

    def policy(request):
        turn = sum(m["role"] == "assistant" for m in request.messages)
        return messages[min(turn, len(messages) - 1)]

    return policy


def play(llm, env, task, skill=None, **settings):
    return asyncio.run(run_episode(llm, env, task, skill, AgentSettings(**settings), "m"))


def test_sql_then_submit(wtq, task):
    llm = FakeLLM(
        script(
            {
                "content": "Looking at the last row.",
                "tool_calls": [tool_call("sql", {"query": "select max(row_id) from t"})],
            },
            {"content": None, "tool_calls": [tool_call("submit", {"answer": ["N"]}, "c2")]},
        )
    )
    ep = play(llm, wtq, task, temperature=0.3, seed=7)
    assert ep.status == "submitted" and ep.answer == ["N"] and ep.error is None
    assert ep.n_turns == 2 and ep.n_calls == 2 and ep.tokens_out == 20
    assert wtq.score(task, ep.answer).correct
    kinds = [(s["role"], s["kind"], s["tool_name"]) for s in ep.steps]
    assert kinds == [
        ("system", "message", None),
        ("user", "message", None),
        ("assistant", "tool_call", "sql"),
        ("tool", "tool_result", "sql"),
        ("assistant", "tool_call", "submit"),
        ("tool", "tool_result", "submit"),
    ]
    assert ep.steps[2]["content"] == "Looking at the last row."
    assert ep.steps[3]["call_step_idx"] == 2 and ep.steps[3]["tool_call_id"] == "c1"
    assert "27" in ep.steps[3]["content"] and not ep.steps[3]["is_error"]
    assert json.loads(ep.steps[2]["tool_args"]) == {"query": "select max(row_id) from t"}
    # what reached the model: tools offered, the settings, the task as the tag, the tool result
    first, second = llm.requests
    assert {t["function"]["name"] for t in first.tools} == {"sql", "submit"}
    assert (first.temperature, first.seed, first.tag, first.stage) == (0.3, 7, "nt-134", "rollout")
    assert second.messages[-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": ep.steps[3]["content"],
    }


def test_faults_go_back_to_the_agent(wtq, task):
    llm = FakeLLM(
        script(
            {"tool_calls": [tool_call("sql", "{not json")]},
            {"tool_calls": [tool_call("shell", {"cmd": "ls"}, "c2")]},
            {"tool_calls": [tool_call("sql", {"query": "drop table t"}, "c3")]},
            {"content": "The answer is N."},
            {
                "tool_calls": [
                    tool_call("submit", {"answer": "N"}, "c5"),
                    tool_call("submit", {"answer": "M"}, "c6"),
                ]
            },
        )
    )
    ep = play(llm, wtq, task)
    results = [s for s in ep.steps if s["kind"] == "tool_result"]
    assert [r["is_error"] for r in results] == [True, True, True, False, True]
    assert "not a JSON object" in results[0]["content"]
    assert "no tool 'shell'" in results[1]["content"]
    assert "only a SELECT (or WITH ... SELECT) is allowed, not DROP" in results[2]["content"]
    assert "already submitted" in results[4]["content"]
    assert json.loads(ep.steps[2]["tool_args"]) == "{not json"  # kept as a JSON string
    assert any(s["role"] == "user" and s["content"] == NUDGE for s in ep.steps)
    assert ep.status == "submitted" and ep.answer == "N"  # the first submission counts


def test_turn_limit(wtq, task):
    llm = FakeLLM(script({"tool_calls": [tool_call("sql", {"query": "select 1"})]}))
    ep = play(llm, wtq, task, max_turns=3)
    assert ep.status == "turn_limit" and ep.n_turns == 3 and ep.answer is None
    assert len(llm.requests) == 3
    assert not wtq.score(task, ep.answer).correct


def test_model_error_ends_the_episode_as_a_record(wtq, task):
    llm = FakeLLM(script({"content": "x"}), fail_on={"nt-134"})
    ep = play(llm, wtq, task)
    assert ep.status == "error" and "HTTP 500" in ep.error
    assert len(ep.steps) == 2 and ep.n_calls == 1


def test_environment_fault_is_recorded(wtq, task):
    class Broken(WikiTableQuestions):
        def tools(self, task):
            raise RuntimeError("table store unreachable")

    ep = play(FakeLLM(script({"content": "x"})), Broken(), task)
    assert ep.status == "error" and "table store unreachable" in ep.error


def test_skill_in_prompt_and_read_tool(wtq, task, skill_dir):
    skill = Skill.load(skill_dir)
    llm = FakeLLM(
        script(
            {"tool_calls": [tool_call("read_skill_file", {"path": "references/dates.md"})]},
            {"tool_calls": [tool_call("submit", {"answer": ["N"]}, "c2")]},
        )
    )
    ep = play(llm, wtq, task, skill=skill)
    system = llm.requests[0].messages[0]["content"]
    assert system.startswith(wtq.system_prompt) and "## Ordering questions" in system
    assert "read_skill_file" in {t["function"]["name"] for t in llm.requests[0].tools}
    assert ep.steps[3]["content"].startswith("Dates:")
