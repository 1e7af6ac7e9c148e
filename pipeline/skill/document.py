"""Markdown files of a skill as lists of lines that remember where each line came from.

A `Document` is the body of one file (for SKILL.md, the YAML frontmatter is kept apart as a
dict). Every line carries an `origin` (base, added, revised, structure) and an optional `item`,
the id of the consolidated statement that wrote it, so provenance survives every edit and can be
read off the finished file line by line.

Headings are ATX headings (`#` to `######`) outside fenced code blocks. A section is a heading
and everything after it up to the next heading of the same or a higher level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from pipeline.errors import UserError

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_WS = re.compile(r"\s+")


class FrontmatterError(UserError, ValueError):
    """SKILL.md's frontmatter is missing or is not a YAML mapping."""


@dataclass
class Line:
    text: str
    origin: str = "base"  # base / added / revised / structure
    item: str | None = None  # statement id behind it, for provenance


@dataclass(frozen=True)
class Heading:
    index: int  # position in Document.lines
    level: int
    title: str


def norm_title(title: str) -> str:
    """Headings compare case- and space-insensitively."""
    return _WS.sub(" ", title).strip().lower()


@dataclass
class Document:
    lines: list[Line] = field(default_factory=list)
    frontmatter: dict | None = None

    @classmethod
    def parse(cls, text: str, *, with_frontmatter: bool = False, origin: str = "base") -> Document:
        raw = text.replace("\r\n", "\n").split("\n")
        if raw and raw[-1] == "":
            raw.pop()
        meta = None
        if with_frontmatter:
            meta, raw = split_frontmatter(raw)
        return cls([Line(t, origin) for t in raw], meta)

    def render(self) -> str:
        head = render_frontmatter(self.frontmatter) if self.frontmatter is not None else []
        return "\n".join(head + [ln.text for ln in self.lines]) + "\n"

    @property
    def offset(self) -> int:
        """How many file lines precede the body (the frontmatter block)."""
        return len(render_frontmatter(self.frontmatter)) if self.frontmatter is not None else 0

    def headings(self) -> list[Heading]:
        out, fenced = [], False
        for i, ln in enumerate(self.lines):
            if _FENCE.match(ln.text):
                fenced = not fenced
                continue
            m = None if fenced else _HEADING.match(ln.text)
            if m:
                out.append(Heading(i, len(m.group(1)), m.group(2).strip()))
        return out

    def find_section(self, title: str) -> tuple[Heading, int] | None:
        """The heading titled `title` and the index one past its section's last line."""
        heads = self.headings()
        want = norm_title(title)
        for k, h in enumerate(heads):
            if norm_title(h.title) == want:
                end = next((o.index for o in heads[k + 1 :] if o.level <= h.level), len(self.lines))
                return h, end
        return None

    def section_of(self) -> list[str | None]:
        """For each line, the title of the innermost heading above it (None before the first)."""
        out: list[str | None] = []
        current = None
        starts = {h.index: h.title for h in self.headings()}
        for i in range(len(self.lines)):
            current = starts.get(i, current)
            out.append(current)
        return out

    def last_content(self, start: int, end: int) -> int:
        """Index of the last non-blank line in [start, end), or start - 1 if none."""
        for i in range(end - 1, start - 1, -1):
            if self.lines[i].text.strip():
                return i
        return start - 1


def split_frontmatter(raw: list[str]) -> tuple[dict, list[str]]:
    if not raw or raw[0].strip() != "---":
        raise FrontmatterError("SKILL.md must start with a '---' YAML frontmatter block")
    try:
        end = next(i for i in range(1, len(raw)) if raw[i].strip() == "---")
    except StopIteration:
        raise FrontmatterError("SKILL.md frontmatter has no closing '---'") from None
    try:
        meta = yaml.safe_load("\n".join(raw[1:end])) or {}
    except yaml.YAMLError as exc:
        raise FrontmatterError(f"SKILL.md frontmatter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise FrontmatterError("SKILL.md frontmatter must be a YAML mapping")
    return meta, raw[end + 1 :]


def render_frontmatter(meta: dict) -> list[str]:
    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=10_000)
    return ["---", *text.rstrip("\n").split("\n"), "---"]


def slug(text: str, *, max_len: int = 64) -> str:
    """kebab-case ascii slug: 'Book flight' -> 'book-flight'."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s[:max_len].rstrip("-")) or "section"
