import pytest
from pydantic import ValidationError

from pipeline.consolidate.answers import (
    MergeAnswer,
    SummaryAnswer,
    audit_merge,
    citation_problem,
    reask_text,
    resolve_citations,
)
from pipeline.consolidate.prompts import load_prompt

SHOWN = {"L1": "lesson-a", "L2": "lesson-b"}


def test_citations_must_name_shown_lessons():
    assert citation_problem(["L2", "lesson-a"], SHOWN) is None
    assert "cites no lesson" in citation_problem([], SHOWN)
    problem = citation_problem(["L1", "L9", "lesson-z"], SHOWN)
    assert "'L9', 'lesson-z'" in problem and "cite only these ids: L1, L2" in problem
    assert resolve_citations(["L2", "lesson-b", "L1"], SHOWN) == ["lesson-a", "lesson-b"]


def merge(**parts) -> MergeAnswer:
    def st(ids):
        return {"ids": ids, "section": "S", "title": "Merged statement title", "detail": "d",
                "edit": "append", "anchor": None, "removes": None}  # fmt: skip

    return MergeAnswer.model_validate(
        {
            "keep": parts.get("keep", []),
            "statements": [st(ids) for ids in parts.get("statements", [])],
            "conflicts": parts.get("conflicts", []),
            "dropped": [{"id": i, "reason": "weaker"} for i in parts.get("dropped", [])],
        }
    )


def test_every_input_is_accounted_for_once_first_use_first():
    ids = ["S1", "S2", "S3", "S4", "S5"]
    a = audit_merge(merge(statements=[["S1", "S2", "X9"], ["S9"]], keep=["S2", "S3"], dropped=["S3", "S4"]), ids)  # fmt: skip
    assert [i for _, i in a.statements] == [["S1", "S2"]] and a.kept == ["S3"]
    assert a.dropped == {"S4": "weaker"} and a.missing == ["S5"]
    assert a.unknown == ["X9", "S9"] and a.repeated == ["S2", "S3"] and a.empty == 1
    text = reask_text(a)
    assert "leaves out the input id(s) S5" in text and "ignored unknown id(s) X9, S9" in text
    # sequential: only the batch's lessons are required; statements may go unmentioned
    a = audit_merge(merge(keep=["L1"]), ["S1", "L1", "L2"], required=["L1", "L2"])
    assert a.missing == ["L2"]


def test_answers_are_validated_by_their_schemas():
    with pytest.raises(ValidationError, match="8 to 300"):
        SummaryAnswer(title="short", content="c", cited_lesson_ids=["L1"])
    with pytest.raises(ValidationError, match="needs its reason"):
        MergeAnswer.model_validate(
            {
                "keep": [],
                "statements": [],
                "conflicts": [],
                "dropped": [{"id": "S1", "reason": " "}],
            }
        )
    with pytest.raises(ValidationError, match="edit"):  # a statement without its placement
        MergeAnswer.model_validate(
            {"keep": [], "conflicts": [], "dropped": [],
             "statements": [{"ids": ["S1"], "section": "S", "title": "A title long enough",
                             "detail": "d", "anchor": None, "removes": None}]}
        )  # fmt: skip


def test_prompts_fill_every_placeholder_and_are_versioned():
    p = load_prompt("merge")
    assert p.fields() == {"skill_name", "skill", "n_inputs", "inputs"}
    assert p.tag.startswith("merge-") and len(p.tag) == len("merge-") + 8
    messages = p.messages(skill_name="s", skill="k", n_inputs=1, inputs="[S1] x")
    assert [m["role"] for m in messages] == ["system", "user"] and "[S1] x" in messages[1][
        "content"
    ]
    assert "<!--" not in messages[0]["content"] and "`keep`" in messages[0]["content"]
    with pytest.raises(KeyError, match="no value for {inputs}"):
        p.messages(skill_name="s", skill="k", n_inputs=1)
    assert load_prompt("summarise").fields() == {
        "section", "kind", "support", "n_members", "n_shown", "lessons"
    }  # fmt: skip
    assert load_prompt("sequential").fields() == {
        "skill_name", "skill", "n_statements", "statements", "n_lessons", "lessons"
    }  # fmt: skip
