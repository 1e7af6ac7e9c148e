"""Prompt files of the model analysts, the structured answer they ask for, and its checks.

Prompts live in ``pipeline/analyse/prompts/<name>-v<N>.md`` and are read by `pipeline.prompts`
(sections, ``{placeholder}`` fields, HTML comments for notes, ``@include <file>`` lines): the
analysts' files include ``lessons-v1.md``, the lesson format and the task of each case. A
prompt's version is its file's ``vN`` plus a digest of its text and of every file it includes, so
any edit changes the analysts' configuration id and the cache key of their requests: the map
re-analyses rather than mixing lessons from two prompts.

`answer_model(max_lessons, judged)` is the pydantic model a model analyst sends as its
``response_format``; `check_lessons` holds an answer against the run (evidence steps must exist
in it, revisions must name a section the base skill has, at most N lessons) and turns what passes
into drafts, counting what it rejects by reason.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, create_model, field_validator

from pipeline import prompts
from pipeline.analyse.analyst import LessonDraft
from pipeline.analyse.redact import redact
from pipeline.llm.fields import Title, at_least
from pipeline.prompts import Prompt
from pipeline.skill.document import norm_title

PROMPTS = Path(__file__).resolve().parent / "prompts"


def load_prompt(name: str) -> Prompt:
    """The newest version of the analysts' prompt `name` (``single`` -> ``single-v<N>.md``)."""
    return prompts.load_prompt(PROMPTS, name)


# -- the structured answer ------------------------------------------------------------------
# Length limits are checked by validators, not declared in the schema (`pipeline.llm.fields`).


class LessonAnswer(BaseModel):
    kind: Literal["failure_cause", "failure_lesson", "success_lesson", "workflow"]
    title: Title = Field(description="one imperative sentence, specific to the tools and values")
    description: str = Field(description="when the lesson applies, in one sentence")
    content: str = Field(
        description="the lesson in full, with the evidence from the run",
        json_schema_extra=at_least(8),
    )
    target_section: str = Field(description="skill section the lesson belongs in")
    op: Literal["add", "revise", "remove"]
    evidence_steps: list[int] = Field(min_length=1, description="step numbers that show it")
    tool_name: str | None = Field(description="main tool involved, if any")
    confidence: float = Field(ge=0, le=1)

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        if len(value.strip()) < 8:
            raise ValueError("the content must state the lesson and its evidence")
        return value.strip()

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, value):
        return _unit(value)

    @field_validator("target_section")
    @classmethod
    def _section(cls, value: str) -> str:
        value = value.strip().lstrip("#").strip()
        if not value:
            raise ValueError("name the section the lesson belongs in")
        return value


class Judgement(BaseModel):
    outcome: Literal["success", "failure"]
    reason: str = Field(description="why, citing step numbers")
    confidence: float = Field(ge=0, le=1)

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, value):
        return _unit(value)


def _unit(value):
    """A confidence past 0..1 is read as the nearest end of it: a grammar bounds strings, not
    the range of a number, and small models write 1.5 or -0.2."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return min(max(float(value), 0.0), 1.0)
    return value


class LessonsAnswer(BaseModel):
    lessons: list[LessonAnswer]


class JudgedLessonsAnswer(BaseModel):
    judgement: Judgement  # first, so the model decides before it analyses
    lessons: list[LessonAnswer]


@cache
def answer_model(max_lessons: int, judged: bool = False) -> type[BaseModel]:
    """The response model for `max_lessons` lessons. The limit is stated in the schema
    (``maxItems``) for the model but not enforced on parse: lessons past it are rejected one by
    one with a counted reason rather than failing the whole answer. The schema also asks for at
    least one lesson (every run teaches something, as a failure or a success lesson): a server
    that makes a grammar of the schema would otherwise let a small model close the list at once;
    an empty answer is still read, as an analysis that found nothing."""
    base = JudgedLessonsAnswer if judged else LessonsAnswer
    return create_model(
        base.__name__,
        __base__=base,
        lessons=(
            list[LessonAnswer],
            Field(json_schema_extra={"minItems": 1, "maxItems": int(max_lessons)}),
        ),
    )


# -- checking an answer against the run ------------------------------------------------------
EVIDENCE = "evidence steps not in the run"
OVER_LIMIT = "over the lesson limit"
NO_SKILL = "remove without a base skill"
NO_SECTION = "remove of a section the base skill lacks"


def _key(heading: str) -> str:
    return norm_title(heading.lstrip("#"))


SIMILAR = 0.75  # how close a named section must be to a heading to be read as that heading


def _section(name: str, by_key: dict[str, str]) -> str:
    """The base skill's heading that `name` means: the same up to case and spacing, else the one
    heading clearly closest to it (a model that shortened or reworded a heading); else `name`."""
    key = _key(name)
    if key in by_key:
        return by_key[key]
    close = difflib.get_close_matches(key, list(by_key), n=2, cutoff=SIMILAR)
    return by_key[close[0]] if len(close) == 1 else name


@dataclass
class Checked:
    drafts: list[LessonDraft]
    rejected: Counter
    reasons: list[str]  # one line per rejected lesson, for the error row when none pass


def check_lessons(
    answer: BaseModel,
    *,
    steps: set[int],
    max_lessons: int,
    headings: list[str] | None,
    rule: str,
) -> Checked:
    """Drafts from a model's answer, in its order; rejects (counted by reason) every lesson
    citing a step the run does not have, removing a section the base skill lacks, or past the
    first `max_lessons`. A target section matching a heading of the base skill up to case and
    spacing, or clearly closest to one heading, takes the heading's exact text. A revise of a
    section the skill lacks is read as what it can only be, an add to that section: its text is
    a whole statement, and there is nothing to revise (small models mislabel the op often; the
    lesson is not lost for it). Text is redacted once more on the way out."""
    by_key = {_key(h): h for h in headings or []}
    out = Checked([], Counter(), [])
    for lesson in answer.lessons:
        missing = sorted({s for s in lesson.evidence_steps if s not in steps})
        section = _section(lesson.target_section, by_key)
        known = _key(section) in by_key
        op = "add" if lesson.op == "revise" and not known else lesson.op
        reason = None
        if missing:
            reason, detail = EVIDENCE, f"cites steps {missing}, not in the run"
        elif op == "remove" and headings is None:
            reason, detail = NO_SKILL, "remove with no base skill"
        elif op == "remove" and not known:
            reason, detail = NO_SECTION, f"remove of section {section!r}, not in the skill"
        elif len(out.drafts) >= max_lessons:
            reason, detail = OVER_LIMIT, f"lesson {len(out.drafts) + 1} of at most {max_lessons}"
        if reason is not None:
            out.rejected[reason] += 1
            out.reasons.append(f"{redact(lesson.title)[:80]!r}: {detail}")
            continue
        out.drafts.append(
            LessonDraft(
                kind=lesson.kind,
                title=redact(lesson.title),
                description=redact(lesson.description.strip()) or None,
                content=redact(lesson.content),
                evidence_steps=sorted(set(lesson.evidence_steps)),
                rule=rule,
                tool_name=(lesson.tool_name or "").strip() or None,
                confidence=round(float(lesson.confidence), 3),
                target_section=redact(section),
                op=op,
            )
        )
    return out
