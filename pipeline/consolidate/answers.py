"""The structured answers the model summariser and mergers ask for, and the checks on them.

The pydantic models go to the server as the ``response_format`` (the model layer validates the
reply and repairs a malformed one once). What a schema cannot say is checked here, by code:

- a summary must cite at least one of the lessons it was shown, and nothing else
  (`citation_problem`);
- a merge must account for every input id exactly once: kept, in one statement, or dropped with a
  reason (`audit_merge`). Ids it does not know are ignored; ids it uses twice keep their first
  use. Missing ids are what a re-ask names (`reask_text`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from pipeline.llm.fields import Title, at_least

EDITS = ("append", "insert_after", "insert_before", "replace")


class SummaryAnswer(BaseModel):
    title: Title = Field(description="one imperative sentence, specific to tools and values")
    content: str = Field(description="when it applies and why, from the lessons only")
    cited_lesson_ids: list[str] = Field(description="ids of the lessons drawn on, e.g. L1")

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the content must say when the lesson applies and why")
        return value.strip()


class MergedStatement(BaseModel):
    ids: list[str] = Field(description="every input id this statement replaces")
    section: str = Field(description="heading of the skill it belongs under")
    title: Title = Field(description="one imperative sentence")
    detail: str = Field(description="when and why, from the inputs only")
    edit: Literal["append", "insert_after", "insert_before", "replace"]
    anchor: str | None = Field(description="exact skill text for insert/replace; null to append")
    removes: str | None = Field(description="a section or references/ file it makes obsolete")


class Conflict(BaseModel):
    ids: list[str] = Field(description="input ids in conflict")
    resolution: str = Field(description="how it was resolved, and on what evidence")


class Drop(BaseModel):
    id: str
    reason: str = Field(json_schema_extra=at_least(4))

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a dropped input needs its reason")
        return value.strip()


class MergeAnswer(BaseModel):
    keep: list[str] = Field(description="input ids that stand unchanged")
    statements: list[MergedStatement]
    conflicts: list[Conflict]
    dropped: list[Drop]


def citation_problem(cited: list[str], shown: dict[str, str]) -> str | None:
    """Why a summary's citations are refused (None when they are fine). `shown` maps the ids
    the prompt listed (L1..) to lesson ids; a full lesson id of a shown lesson is accepted too."""
    if not cited:
        return "the summary cites no lesson; cite the ids of the lessons you drew on"
    known = set(shown) | set(shown.values())
    bad = [c for c in cited if c not in known]
    if bad:
        return (
            f"the summary cites {', '.join(map(repr, bad[:5]))}, which are not among the lessons "
            f"shown; cite only these ids: {', '.join(shown)}"
        )
    return None


def resolve_citations(cited: list[str], shown: dict[str, str]) -> list[str]:
    """Cited ids as lesson ids, deduplicated and sorted."""
    return sorted({shown.get(c, c) for c in cited})


@dataclass
class MergeAudit:
    """Where each input id went in a merge answer, and what was wrong with it."""

    kept: list[str] = field(default_factory=list)
    statements: list[tuple[MergedStatement, list[str]]] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    empty: int = 0  # statements left without a valid id (discarded)

    @property
    def notes(self) -> list[str]:
        out = []
        if self.unknown:
            out.append(f"ignored unknown id(s) {', '.join(self.unknown[:10])}")
        if self.repeated:
            out.append(f"ids used more than once kept their first use: {', '.join(self.repeated[:10])}")  # fmt: skip
        if self.empty:
            out.append(f"{self.empty} statement(s) without a valid input id discarded")
        return out


def audit_merge(
    answer: MergeAnswer, inputs: list[str], required: list[str] | None = None
) -> MergeAudit:
    """Sort an answer's ids into kept / statements / dropped, first use first.

    `inputs` are the ids the prompt listed; `required` those that must be accounted for (all of
    them by default; in sequential mode, the batch's lessons but not the statements so far)."""
    known, used = set(inputs), set()
    audit = MergeAudit()

    def take(i: str) -> bool:
        if i not in known:
            if i not in audit.unknown:
                audit.unknown.append(i)
            return False
        if i in used:
            if i not in audit.repeated:
                audit.repeated.append(i)
            return False
        used.add(i)
        return True

    for st in answer.statements:
        ids = [i for i in st.ids if take(i)]
        if ids:
            audit.statements.append((st, ids))
        else:
            audit.empty += 1
    audit.kept = [i for i in answer.keep if take(i)]
    for d in answer.dropped:
        if take(d.id):
            audit.dropped[d.id] = d.reason
    audit.missing = [i for i in (inputs if required is None else required) if i not in used]
    return audit


def reask_text(audit: MergeAudit, what: str = "input") -> str:
    """The follow-up message when an answer leaves ids unaccounted for."""
    extra = "".join(f" Also: {n}." for n in audit.notes)
    return (
        f"Your answer leaves out the {what} id(s) {', '.join(audit.missing)}. Every {what} id must "
        "appear exactly once: in `keep`, in one statement's `ids`, or in `dropped` with a reason."
        f"{extra} Reply again with the whole corrected JSON object."
    )
