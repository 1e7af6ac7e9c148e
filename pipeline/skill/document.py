"""Markdown files of a skill as lists of lines that remember where each line came from.

A `Document` is the body of one file (for SKILL.md, the YAML frontmatter is kept apart as a
dict). Every line carries an `origin` (base, added, revised, structure) and an optional `item`,
the id of the consolidated statement that wrote it, so provenance survives every edit and can be
read off the finished file line by line.

This module is the one reader of Markdown structure for the whole pipeline (writing skills,
analysts listing a base skill's sections, the evaluation ablating them), so the rules live here:

- Headings are ATX headings, `#` to `######` then at least one space or tab (`#Title` is text),
  with optional closing `#`s; setext headings (a title underlined with `===`) are not read.
- Lines inside fenced code blocks (opened and closed by a line starting with ``` or ~~~) are
  never headings, and the fence lines themselves are not either.
- A section is a heading and everything after it up to the next heading of the same or a higher
  level.
- Frontmatter is a leading block between two lines that are `---` (surrounding spaces allowed);
  a file whose first line is anything else has none.
- Titles compare by `norm_title`: case- and space-insensitively.
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


@dataclass(frozen=True)
class Section:
    title: str
    level: int
    start: int  # index of the heading line
    end: int  # one past the section's last line


def norm_title(title: str) -> str:
    """Headings compare case- and space-insensitively."""
    return _WS.sub(" ", title).strip().lower()


def find_headings(lines: list[str]) -> list[Heading]:
    """The headings among `lines`, in order; fenced code is skipped."""
    out, fenced = [], False
    for i, text in enumerate(lines):
        if _FENCE.match(text):
            fenced = not fenced
            continue
        m = None if fenced else _HEADING.match(text)
        if m:
            out.append(Heading(i, len(m.group(1)), m.group(2).strip()))
    return out


def section_end(heads: list[Heading], k: int, n_lines: int) -> int:
    """One past the last line of the section opened by heads[k]: the next heading of the same
    or a higher level, else the end of the lines."""
    level = heads[k].level
    return next((h.index for h in heads[k + 1 :] if h.level <= level), n_lines)


def find_sections(lines: list[str]) -> list[Section]:
    """Every heading's section, in order (a section holds its subsections)."""
    heads = find_headings(lines)
    return [
        Section(h.title, h.level, h.index, section_end(heads, k, len(lines)))
        for k, h in enumerate(heads)
    ]


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
        return find_headings([ln.text for ln in self.lines])

    def find_section(self, title: str) -> tuple[Heading, int] | None:
        """The heading titled `title` and the index one past its section's last line."""
        heads = self.headings()
        want = norm_title(title)
        for k, h in enumerate(heads):
            if norm_title(h.title) == want:
                return h, section_end(heads, k, len(self.lines))
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


def _opens_frontmatter(raw: list[str]) -> bool:
    return bool(raw) and raw[0].strip() == "---"


def frontmatter_end(raw: list[str]) -> int | None:
    """Index of the `---` line closing the leading frontmatter block; None without one."""
    if not _opens_frontmatter(raw):
        return None
    return next((i for i in range(1, len(raw)) if raw[i].strip() == "---"), None)


def parse_frontmatter(text: str) -> dict:
    """The YAML between the `---` lines as a mapping (empty when blank)."""
    try:
        meta = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise FrontmatterError(f"SKILL.md frontmatter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise FrontmatterError("SKILL.md frontmatter must be a YAML mapping")
    return meta


def split_frontmatter(raw: list[str]) -> tuple[dict, list[str]]:
    """(metadata, body lines) of a SKILL.md that must have frontmatter."""
    if not _opens_frontmatter(raw):
        raise FrontmatterError("SKILL.md must start with a '---' YAML frontmatter block")
    end = frontmatter_end(raw)
    if end is None:
        raise FrontmatterError("SKILL.md frontmatter has no closing '---'")
    return parse_frontmatter("\n".join(raw[1:end])), raw[end + 1 :]


def split_frontmatter_text(text: str) -> tuple[str, str]:
    """(the raw YAML of the frontmatter, the rest of the text); ('', text) when there is none.
    Text in, text out, untouched: digests taken of either part stay those of the file."""
    lines = text.split("\n")
    end = frontmatter_end(lines)
    if end is None:
        return "", text
    return "\n".join(lines[1:end]), "\n".join(lines[end + 1 :])


def render_frontmatter(meta: dict) -> list[str]:
    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=10_000)
    return ["---", *text.rstrip("\n").split("\n"), "---"]


def slug(text: str, *, max_len: int = 64) -> str:
    """kebab-case ascii slug: 'Book flight' -> 'book-flight'."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s[:max_len].rstrip("-")) or "section"
