"""Prompt files of the model analysts, and the structured answer they ask a model for.

Prompts live in ``pipeline/analyse/prompts/<name>-v<N>.md`` with a ``## system`` and a ``## user``
section and ``{placeholder}`` fields. A prompt's version is its file's ``vN`` plus a digest of its
text, so any edit to a prompt changes the analysts' configuration id and the map re-analyses the
affected trajectories rather than mixing lessons from two prompts.

`LessonsAnswer` is the JSON schema a model analyst requests (structured output); `to_drafts`
checks an answer against the run (evidence steps must exist in it) and turns it into drafts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from pipeline import ids
from pipeline.analyse.analyst import LessonDraft

PROMPTS = Path(__file__).resolve().parent / "prompts"
_SECTION = re.compile(r"^## (system|user)\s*$", re.M)
_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    system: str
    user: str

    def messages(self, **values: object) -> list[dict[str, str]]:
        """Chat messages with the placeholders filled (every placeholder must be given)."""
        return [
            {"role": "system", "content": self.system.format(**values)},
            {"role": "user", "content": self.user.format(**values)},
        ]


def load_prompt(name: str) -> Prompt:
    """The newest version of prompt `name` (``single`` -> ``single-v<N>.md``, highest N)."""
    files = sorted(PROMPTS.glob(f"{name}-v*.md"), key=lambda p: int(p.stem.rsplit("-v", 1)[1] or 0))
    if not files:
        raise FileNotFoundError(f"no prompt {name!r} in {PROMPTS}")
    path = files[-1]
    text = path.read_text(encoding="utf-8")
    parts = _SECTION.split(_COMMENT.sub("", text))
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if set(sections) != {"system", "user"}:
        raise ValueError(f"{path} needs a '## system' and a '## user' section")
    version = f"{path.stem.rsplit('-', 1)[1]}-{ids.digest(text, length=8)}"
    return Prompt(name, version, sections["system"], sections["user"])


class LessonAnswer(BaseModel):
    kind: Literal["failure_cause", "failure_lesson", "success_lesson", "workflow"]
    title: str = Field(min_length=8, max_length=300)
    content: str = Field(min_length=8)
    evidence_steps: list[int] = Field(min_length=1)
    target_section: str | None = None
    tool_name: str | None = None
    confidence: float = Field(ge=0, le=1)


class LessonsAnswer(BaseModel):
    lessons: list[LessonAnswer]


def to_drafts(answer: LessonsAnswer, steps: set[int], rule: str) -> list[LessonDraft]:
    """Drafts from a model's answer; evidence outside the run is dropped, and a lesson left
    with none is rejected (a lesson must point at what it claims)."""
    out = []
    for lesson in answer.lessons:
        cited = sorted({s for s in lesson.evidence_steps if s in steps})
        if not cited:
            raise ValueError(
                f"lesson {lesson.title!r} cites no step of the run: {lesson.evidence_steps}"
            )
        out.append(
            LessonDraft(
                kind=lesson.kind,
                title=lesson.title.strip(),
                content=lesson.content.strip(),
                evidence_steps=cited,
                rule=rule,
                tool_name=lesson.tool_name,
                confidence=lesson.confidence,
                target_section=lesson.target_section,
            )
        )
    return out
