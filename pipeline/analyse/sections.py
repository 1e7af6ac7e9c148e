"""Sections of a base skill, and matching a lesson to the section it belongs in.

Reads a skill folder's ``SKILL.md`` (frontmatter skipped) and splits it at its headings of levels
1 to 3, read by `pipeline.skill.document` (fenced code ignored); a section's body runs to the
next such heading, so a subsection's words count for it alone. `skill_sections(dir)` gives the
headings in order. `SectionMatcher` scores a lesson's words (the tool it is about, the error
text, the task family) against each section's heading and body, weighting words by how few
sections use them (so "flight" in every section counts for little and "cancel" or "baggage"
decides), and answers the best section or None when nothing matches well: the caller then
derives a section name of its own (`derived_section`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.skill.document import Document, split_frontmatter_text

MAX_LEVEL = 3  # deeper headings are details inside a section, not places for a lesson
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_STOP = frozenset(
    "a an and are as at be by can do does for from has have if in into is it its may must no "
    "not of on or only other should so than that the their then there these this to use used "
    "user users was were what when which will with you your agent any all each".split()
)

# Tool names use CRUD verbs where skills speak plain English ("update_reservation" vs "Modify
# flight"): a generic verb thesaurus, not a domain list, bridges the two.
_VERB_SYNONYMS = {
    "update": ("modify", "change", "edit"),
    "modify": ("update", "change", "edit"),
    "change": ("modify", "update"),
    "edit": ("modify", "change", "update"),
    "set": ("change", "update"),
    "delete": ("cancel", "remove"),
    "remove": ("cancel", "delete"),
    "cancel": ("delete", "remove"),
    "create": ("book", "add", "new"),
    "book": ("create", "reserve"),
    "add": ("create", "new"),
    "get": ("look", "find", "retrieve"),
    "search": ("find", "look"),
    "send": ("issue", "offer"),
    "transfer": ("escalate", "hand"),
}


@dataclass
class Section:
    heading: str
    level: int
    body: str = ""
    heading_words: set[str] = field(default_factory=set)
    body_words: Counter = field(default_factory=Counter)


def stem(word: str) -> str:
    """A light English stemmer, enough to meet 'flights'/'flight', 'cancelled'/'cancel',
    'baggages'/'baggage', 'modified'/'modify' (both sides of a comparison go through it)."""
    w = word.lower()
    for suffix, repl in (
        ("ies", "y"),
        ("ied", "y"),
        ("sses", "ss"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("xes", "x"),
        ("ing", ""),
        ("led", "l"),
        ("ed", ""),
        ("s", ""),
    ):
        if len(w) > len(suffix) + 2 and w.endswith(suffix) and not w.endswith("ss"):
            w = w[: -len(suffix)] + repl
            break
    if len(w) > 4 and w.endswith("ll"):
        w = w[:-1]
    if len(w) > 4 and w.endswith("e"):
        w = w[:-1]
    return w


_SYNONYMS = {stem(k): tuple(stem(v) for v in vs) for k, vs in _VERB_SYNONYMS.items()}


def words(text: str | None) -> list[str]:
    """Stemmed content words of `text`; snake_case and camelCase identifiers are split."""
    if not text:
        return []
    text = _CAMEL.sub(" ", text.replace("_", " ").replace("-", " "))
    return [stem(w) for w in _WORD.findall(text) if w.lower() not in _STOP and len(w) > 1]


def parse_sections(markdown: str) -> list[Section]:
    """Split Markdown at headings (levels 1-3); text before the first heading is dropped."""
    doc = Document.parse(split_frontmatter_text(markdown)[1])
    heads = [h for h in doc.headings() if h.level <= MAX_LEVEL]
    ends = [h.index for h in heads[1:]] + [len(doc.lines)]
    sections = []
    for head, end in zip(heads, ends, strict=True):
        text = "\n".join(ln.text for ln in doc.lines[head.index + 1 : end]).strip()
        sections.append(
            Section(head.title, head.level, text, set(words(head.title)), Counter(words(text)))
        )
    return sections


def skill_file(skill_dir: str | Path) -> Path:
    path = Path(skill_dir)
    path = path / "SKILL.md" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no SKILL.md at {path}")
    return path


def skill_sections(skill_dir: str | Path) -> list[str]:
    """Headings of a skill's SKILL.md (levels 1-3), in document order."""
    return [s.heading for s in parse_sections(skill_file(skill_dir).read_text(encoding="utf-8"))]


def derived_section(tool_name: str | None, fallback: str = "General") -> str:
    """A section name for a lesson when there is no base skill: the tool, in words."""
    if not tool_name:
        return fallback
    text = _CAMEL.sub(" ", tool_name.replace("_", " ").replace("-", " ")).strip()
    return text[:1].upper() + text[1:].lower() if text else fallback


class SectionMatcher:
    """Scores words against a skill's sections; `match` answers a heading or None."""

    def __init__(self, sections: list[Section], min_score: float = 0.75):
        self.sections = sections
        self.min_score = min_score
        n = max(len(sections), 1)
        # Headings and bodies get their own rarity: "book" is in many bodies but one heading.
        head_df: Counter = Counter()
        body_df: Counter = Counter()
        for s in sections:
            head_df.update(s.heading_words)
            body_df.update(set(s.body_words))
        self.head_idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in head_df.items()}
        self.idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in body_df.items()}

    @classmethod
    def from_skill(cls, skill_dir: str | Path | None) -> SectionMatcher | None:
        if skill_dir is None:
            return None
        return cls(parse_sections(skill_file(skill_dir).read_text(encoding="utf-8")))

    def _score(self, section: Section, query: dict[str, float]) -> float:
        score = 0.0
        for w, weight in query.items():
            if w in section.heading_words:
                score += 3.0 * weight * self.head_idf[w]
            if section.body_words.get(w):
                score += weight * self.idf[w] * min(1.0 + math.log(section.body_words[w]), 2.0)
        return score

    def scores(self, primary: list[str], secondary: list[str] = ()) -> list[tuple[float, str]]:
        """(score, heading) per section, best first.

        Primary words (the tool's, with verb synonyms) decide; secondary words (error text, task
        family) count a quarter as much, enough to break ties or place a lesson with no tool.
        """
        query: dict[str, float] = {}
        for w in primary:
            query[w] = 1.0
        for w in primary:
            for syn in _SYNONYMS.get(w, ()):
                query.setdefault(syn, 0.75)
        extra = {w: 1.0 for w in secondary if w not in query}
        weight = 1.0 if not query else 0.25
        out = [
            (round(self._score(s, query) + weight * self._score(s, extra), 6), s.heading)
            for s in self.sections
        ]
        # Ties go to the later (more specific) section: the title section holds the preamble.
        order = {h: i for i, (_, h) in enumerate(out)}
        return sorted(out, key=lambda t: (-t[0], -order[t[1]]))

    def match(self, primary: list[str], secondary: list[str] = ()) -> str | None:
        """The best section, or None below `min_score`. A clear winner on the tool's own words
        (half again the runner-up) is taken as is; otherwise the context words decide."""
        alone = self.scores(primary)
        if len(alone) > 1 and alone[0][0] >= self.min_score and alone[0][0] >= 1.5 * alone[1][0]:
            return alone[0][1]
        ranked = self.scores(primary, secondary)
        if not ranked or ranked[0][0] < self.min_score:
            return None
        return ranked[0][1]
