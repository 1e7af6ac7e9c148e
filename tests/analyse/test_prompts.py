"""Prompt files: versioned by content (includes too), rendered as golden files; answers checked."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from pipeline.analyse import prompts
from pipeline.analyse.agentic import AgenticAnalyst
from pipeline.analyse.lakeview import LakeView
from pipeline.analyse.miner.gold import GoldAction
from pipeline.analyse.prompts import (
    EVIDENCE,
    NO_SECTION,
    NO_SKILL,
    OVER_LIMIT,
    answer_model,
    check_lessons,
    load_prompt,
)
from pipeline.analyse.single import SingleAnalyst
from pipeline.analyse.tools import RunTools
from pipeline.llm.endpoint import grammar_only
from pipeline.settings import ModelSettings
from tests.analyse import builders, golden
from tests.analyse.builders import call, say, system, user

SETTINGS = ModelSettings(model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
SKILL = (
    "---\nname: shop\ndescription: d\n---\n# Shop policy\n\nBe polite.\n\n"
    "## Placing orders\n\nConfirm the items and the total with the user first.\n\n"
    "## Refunds\n\nRefunds go to the original payment method. Contact: ops@example.com\n"
)


def sample(outcome: str):
    grader = {
        "actions": [{"name": "place_order", "kwargs": {"items": [{"sku": "A1", "qty": 3}]}}],
        "instruction": "You want three A1.",
    }
    traj, steps = builders.frames(
        [
            builders.run(
                "r1",
                "shop",
                outcome,
                [
                    system("You are a shop assistant."),
                    user("Three A1 please. My key is sk-abcdefghijklmnopqrstuvwx1234."),
                    call("place_order", {"items": [{"sku": "A1", "qty": 2}]}, '{"order": 7}'),
                    say("Done: order 7."),
                ],
                task_id="t1",
                grader=grader,
                reward=1.0 if outcome == "success" else 0.0,
            )
        ]
    )
    return traj.row(0, named=True), steps


def as_text(messages: list[dict]) -> str:
    return "".join(f"=== {m['role']} ===\n{m['content']}\n" for m in messages)


@pytest.mark.parametrize(
    "name,outcome,deepen",
    [("failure", "failure", True), ("success", "success", False), ("judge", "unknown", True)],
)
def test_single_prompts_golden(tmp_path, name, outcome, deepen):
    skill = tmp_path / "SKILL.md"
    skill.write_text(SKILL)
    analyst = SingleAnalyst(SETTINGS, base_skill=skill if deepen else None)
    row, steps = sample(outcome)
    req, _ = analyst.request(row, steps)
    assert req.prompt_version == analyst.prompt_version and req.tag == "r1"
    judged = "judgement" in req.response_model.model_fields
    assert judged == (outcome == "unknown")
    golden.check(f"prompt_single_{name}.txt", as_text(req.messages))


@pytest.mark.parametrize("outcome", ["failure", "unknown"])
def test_agentic_prompt_golden(lake, tmp_path, outcome):
    skill = tmp_path / "SKILL.md"
    skill.write_text(SKILL)
    analyst = AgenticAnalyst(SETTINGS, {"max_turns": 6}, base_skill=skill)
    row, steps = sample(outcome)
    builders.write(lake, [builders.run("x", "shop", "success", [user("hi")])])
    view = LakeView(lake)
    gold = [GoldAction(0, "place_order", {"items": [{"sku": "A1", "qty": 3}]})]
    tools = RunTools(row, steps, view, sections=analyst.sections, gold=gold, calls=[])
    messages = [*analyst.opening(row, steps, tools), analyst.final_message()]
    golden.check(f"prompt_agentic_{outcome}.txt", as_text(messages))
    if outcome == "failure":
        golden.check("prompt_agentic_tools.json", json.dumps(tools.specs(), indent=1) + "\n")
    view.close()


def test_versions_follow_the_text_of_a_prompt_and_its_includes(tmp_path, monkeypatch):
    assert load_prompt("single").tag.startswith("single-v2-")
    assert load_prompt("agentic").tag.startswith("agentic-v1-")
    for f in ("single-v2.md", "lessons-v1.md"):
        (tmp_path / f).write_text((prompts.PROMPTS / f).read_text())
    monkeypatch.setattr(prompts, "PROMPTS", tmp_path)
    before = load_prompt("single").version
    assert before == load_prompt("single").version
    (tmp_path / "lessons-v1.md").write_text((tmp_path / "lessons-v1.md").read_text() + "\n.")
    assert load_prompt("single").version != before, "an edit of an included file counts"
    (tmp_path / "single-v3.md").write_text("@include lessons-v1.md\n## system\nS\n## user\n{x}")
    newest = load_prompt("single")
    assert newest.version.startswith("v3-") and newest.text("user", x="y") == "y"
    assert "failure" in newest.sections, "sections of the included file come along"
    (tmp_path / "single-v4.md").write_text("@include nowhere-v1.md\n## system\nS\n## user\nU")
    with pytest.raises(FileNotFoundError, match="includes nowhere-v1.md"):
        load_prompt("single")
    with pytest.raises(FileNotFoundError):
        load_prompt("no-such-prompt")


def lesson(**over) -> dict:
    return {
        "kind": "failure_cause",
        "title": "Pass the exact total to book",
        "description": "bookings",
        "content": "At step 3 the total was 25 where 30 was due.",
        "target_section": "Booking",
        "op": "add",
        "evidence_steps": [3],
        "tool_name": "book",
        "confidence": 0.8,
    } | over


def test_the_answer_schema_and_its_validation():
    model = answer_model(2)
    schema = model.model_json_schema()
    assert schema["properties"]["lessons"]["maxItems"] == 2
    text = json.dumps(grammar_only(schema, keep=False))  # the schema as strict servers get it
    assert "minLength" not in text and "maxLength" not in text, "strict servers refuse them"
    title = schema["$defs"]["LessonAnswer"]["properties"]["title"]
    assert title["x-grammar"] == {"minLength": 8}  # for servers that make a grammar of it
    model.model_validate({"lessons": [lesson()] * 4})  # the limit is checked lesson by lesson
    for bad in (
        {"title": "short"},
        {"content": " "},
        {"target_section": " ## "},
        {"evidence_steps": []},
        {"confidence": "high"},
        {"kind": "advice"},
        {"op": "rewrite"},
    ):
        with pytest.raises(ValidationError):
            model.model_validate({"lessons": [lesson(**bad)]})
    # a confidence past 0..1 is read as the nearest end (small models write 1.5 or -0.2)
    assert model.model_validate({"lessons": [lesson(confidence=1.5)]}).lessons[0].confidence == 1
    judged = answer_model(2, judged=True)
    assert list(judged.model_json_schema()["properties"]) == ["judgement", "lessons"]


def test_lessons_are_checked_against_the_run_and_the_skill():
    model = answer_model(2)
    answer = model.model_validate(
        {
            "lessons": [
                lesson(target_section="## booking ", op="revise"),
                lesson(evidence_steps=[3, 99], title="Cites a step that is not there"),
                lesson(op="remove", target_section="Loyalty", title="Drop the loyalty rule"),
                lesson(title="Write to ann@example.com first", evidence_steps=[1, 1, 3]),
                lesson(op="revise", target_section="Seat maps", title="Show the seat map"),
                lesson(title="One too many for the limit"),
            ]
        }
    )
    checked = check_lessons(
        answer, steps={1, 2, 3}, max_lessons=3, headings=["Shop", "Booking"], rule="single:failure"
    )
    # a revise of a section the skill lacks is an add to it; a remove of one is rejected
    assert [(d.title, d.target_section, d.op) for d in checked.drafts] == [
        ("Pass the exact total to book", "Booking", "revise"),
        ("Write to [REDACTED:email] first", "Booking", "add"),
        ("Show the seat map", "Seat maps", "add"),
    ]
    assert checked.drafts[1].evidence_steps == [1, 3] and checked.drafts[0].rule == "single:failure"
    assert checked.rejected == {EVIDENCE: 1, NO_SECTION: 1, OVER_LIMIT: 1}
    assert (
        checked.reasons[0] == "'Cites a step that is not there': cites steps [99], not in the run"
    )
    plain = check_lessons(answer, steps={1, 2, 3}, max_lessons=5, headings=None, rule="r")
    assert plain.rejected == {EVIDENCE: 1, NO_SKILL: 1} and len(plain.drafts) == 4
    assert [d.op for d in plain.drafts] == ["add"] * 4
