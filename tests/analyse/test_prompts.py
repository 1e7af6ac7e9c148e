"""Prompt files for the model analysts: versioned by content, filled from a rendered run."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.analyse.prompts import LessonsAnswer, load_prompt, to_drafts
from pipeline.analyse.render import render_trajectory
from tests.analyse import builders
from tests.analyse.builders import call, user


def test_single_prompt_fills_from_a_rendered_run():
    prompt = load_prompt("single")
    assert prompt.version.startswith("v1-") and len(prompt.version) == 11
    traj, steps = builders.frames(
        [builders.run("r", "s", "failure", [user("hi"), call("t", {"a": 1}, "ok")])]
    )
    messages = prompt.messages(
        skill="- Book flight\n- Cancel flight",
        trajectory=render_trajectory(traj.row(0, named=True), steps),
        max_lessons=5,
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "at most 5 lessons" in messages[0]["content"]
    assert (
        "[1] tool_call t(a=1)" in messages[1]["content"]
        and "- Cancel flight" in messages[1]["content"]
    )
    with pytest.raises(KeyError):
        prompt.messages(skill="x")
    with pytest.raises(FileNotFoundError):
        load_prompt("no-such-prompt")


def test_answers_are_checked_against_the_run():
    answer = LessonsAnswer.model_validate(
        {
            "lessons": [
                {
                    "kind": "failure_cause",
                    "title": "Pass the exact total to book",
                    "content": "At step 3 ...",
                    "evidence_steps": [3, 99],
                    "confidence": 0.8,
                    "tool_name": "book",
                }
            ]
        }
    )
    [draft] = to_drafts(answer, {1, 2, 3}, rule="model")
    assert draft.evidence_steps == [3] and draft.rule == "model"
    with pytest.raises(ValueError, match="cites no step"):
        to_drafts(answer, {1}, rule="model")
    with pytest.raises(ValidationError):
        LessonsAnswer.model_validate(
            {
                "lessons": [
                    {
                        "kind": "advice",
                        "title": "x",
                        "content": "y",
                        "evidence_steps": [],
                        "confidence": 2,
                    }
                ]
            }
        )
