"""Lint an Agent Skills folder: frontmatter, size, structure, links. Usable alone:

    python -m pipeline.skill.lint path/to/skill      # prints problems, exit 1 if any

Checks SKILL.md's frontmatter (``name`` kebab-case, at most 64 characters, equal to the folder
name; ``description`` non-empty, at most 1024 characters; only the allowed keys), SKILL.md under
500 lines, every file in ``references/`` linked from SKILL.md and every local link resolving, and
in every Markdown file: no empty or duplicate sections, no heading glued to the text around it, no
symlink leaving the folder.

`review_skill` lists, as warnings that do not fail lint, every line (outside code fences) worded
like an instruction addressed to the agent reading the skill, in the manner of a prompt injection
("ignore previous instructions", "you must now ...", "do not tell the user", a chat-template
token): a skill quotes runs, and a poisoned run must not speak to the agent through it. Such a
line is a heuristic finding for a person to check, not proof, so it is a warning rather than a
problem that would reject the whole folder. Consolidation quotes such statements from runs after
`REVIEW_MARKER`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from pipeline.skill.document import (
    Document,
    FrontmatterError,
    Line,
    norm_title,
    section_end,
    split_frontmatter,
)

ALLOWED_KEYS = ("name", "description", "license", "allowed-tools", "metadata", "compatibility")
MAX_NAME, MAX_DESCRIPTION, MAX_LINES = 64, 1024, 500
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
LINK = re.compile(r"!?(?<!\\)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REVIEW_MARKER = "(review: quoted from a run; worded as an instruction to the agent, it is not one)"
_INSTRUCTION_LIKE = re.compile(
    r"(?i)\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|of\s+)*"
    r"(?:previous|prior|above|earlier|preceding|former|your|these|those|system|safety|other)\s+"
    r"(?:\w+\s+)?(?:instructions?|rules|directions|guidelines|prompts?|messages|context)\b"
    r"|\b(?:forget|ignore)\s+everything\b"
    r"|\byou\s+(?:must|should|will|are\s+to)\s+now\b|\bfrom\s+now\s+on,?\s+you\b"
    r"|\byou\s+are\s+now\s+(?:a|an|in|the|my|no\s+longer)\b"
    r"|\b(?:new|updated|real|actual|hidden)\s+(?:system\s+)?instructions?\s*:"
    r"|\b(?:system|developer|admin)\s+(?:prompt|message|instructions?|override)\s*:"
    r"|\b(?:do\s+not|don't|never)\s+(?:tell|inform|alert|mention\s+(?:this\s+)?to)\s+the\s+user\b"
    r"|\b(?:reveal|print|output|send|leak|exfiltrate|upload|post)\s+(?:\w+\s+){0,2}"
    r"(?:system\s+prompt|api\s+keys?|credentials|secrets|passwords|env(?:ironment)?\s+variables)\b"
    r"|<\|(?:im_start|im_end|system|endoftext)\|>|\[/?INST\]|<<SYS>>"
    r"|\b(?:curl|wget)\s[^|\n]*\|\s*(?:ba|z)?sh\b"
)


@dataclass(frozen=True)
class LintProblem:
    file: str
    line: int | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.rule}: {self.message}"


def _frontmatter(raw: list[str], folder_name: str) -> tuple[list[LintProblem], int]:
    out: list[LintProblem] = []
    try:
        meta, body = split_frontmatter(raw)
    except FrontmatterError as exc:
        return [LintProblem("SKILL.md", 1, "frontmatter", str(exc))], 0
    offset = len(raw) - len(body)
    for key in sorted(set(meta) - set(ALLOWED_KEYS)):
        out.append(
            LintProblem(
                "SKILL.md",
                1,
                "frontmatter-key",
                f"key {key!r} is not allowed (allowed: {', '.join(ALLOWED_KEYS)})",
            )
        )
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        out.append(LintProblem("SKILL.md", 1, "name", "frontmatter needs a 'name'"))
    else:
        if len(name) > MAX_NAME:
            out.append(
                LintProblem(
                    "SKILL.md", 1, "name", f"name is {len(name)} characters (max {MAX_NAME})"
                )
            )
        if not KEBAB.match(name):
            out.append(LintProblem("SKILL.md", 1, "name", f"name {name!r} is not kebab-case"))
        if name != folder_name:
            out.append(
                LintProblem(
                    "SKILL.md",
                    1,
                    "name",
                    f"name {name!r} does not match the folder name {folder_name!r}",
                )
            )
    desc = meta.get("description")
    if not isinstance(desc, str) or not desc.strip():
        out.append(
            LintProblem("SKILL.md", 1, "description", "frontmatter needs a non-empty 'description'")
        )
    elif len(desc) > MAX_DESCRIPTION:
        out.append(
            LintProblem(
                "SKILL.md",
                1,
                "description",
                f"description is {len(desc)} characters (max {MAX_DESCRIPTION})",
            )
        )
    return out, offset


def _structure(rel: str, doc: Document, offset: int) -> list[LintProblem]:
    out: list[LintProblem] = []
    heads = doc.headings()
    seen: dict[str, int] = {}
    lines = doc.lines
    for k, h in enumerate(heads):
        no = h.index + offset + 1
        key = norm_title(h.title)
        if key in seen:
            out.append(
                LintProblem(
                    rel, no, "duplicate-section", f"section {h.title!r} also at line {seen[key]}"
                )
            )
        seen.setdefault(key, no)
        end = section_end(heads, k, len(lines))
        if not any(ln.text.strip() for ln in lines[h.index + 1 : end]):
            out.append(LintProblem(rel, no, "empty-section", f"section {h.title!r} has no content"))
        if h.index + 1 < len(lines) and lines[h.index + 1].text.strip():
            out.append(
                LintProblem(
                    rel,
                    no,
                    "heading-glued",
                    f"heading {h.title!r} is followed by text without a blank line",
                )
            )
        if h.index > 0 and lines[h.index - 1].text.strip():
            out.append(
                LintProblem(
                    rel, no, "heading-glued", f"heading {h.title!r} is not preceded by a blank line"
                )
            )
    return out


def instruction_like(text: str) -> str | None:
    """The words of `text` that address the agent as a prompt injection would, if any."""
    m = _INSTRUCTION_LIKE.search(text or "")
    return m.group(0) if m else None


def review_skill(directory: str | os.PathLike) -> list[LintProblem]:
    """Warnings for a person to check (they do not fail lint): every line of the folder's
    Markdown files, outside code fences, worded like an instruction addressed to the agent."""
    root = Path(directory)
    out: list[LintProblem] = []
    for path in sorted(root.rglob("*.md")):
        if not path.is_file() or path.is_symlink():
            continue
        rel = path.relative_to(root).as_posix()
        fenced = False
        for no, text in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
            if text.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            said = None if fenced else instruction_like(text)
            if said:
                out.append(
                    LintProblem(
                        rel,
                        no + 1,
                        "instruction-like",
                        f"{said!r} reads like an instruction to the agent, as a prompt injection "
                        "in a run would: check where it came from",
                    )
                )
    return out


def local_links(lines: list[Line]) -> Iterator[tuple[int, str]]:
    """(line index, target) of every link to a file among Markdown `lines`, outside code fences:
    the target unquoted, without its #fragment; in-page anchors and URLs (http:, mailto:, ...)
    left out."""
    fenced = False
    for i, ln in enumerate(lines):
        if ln.text.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if fenced:
            continue
        for m in LINK.finditer(ln.text):
            target = unquote(m.group(1).split("#", 1)[0])
            if target and not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                yield i, target


def _links(rel: str, doc: Document, offset: int, root: Path) -> tuple[list[LintProblem], set[str]]:
    out, targets = [], set()
    for i, target in local_links(doc.lines):
        resolved = (root / Path(rel).parent / target).resolve()
        try:
            inside = resolved.relative_to(root.resolve()).as_posix()
        except ValueError:
            out.append(
                LintProblem(
                    rel,
                    i + offset + 1,
                    "link-outside",
                    f"link {target!r} leaves the skill folder",
                )
            )
            continue
        if not resolved.exists():
            out.append(
                LintProblem(
                    rel,
                    i + offset + 1,
                    "dangling-link",
                    f"link {target!r} points to a missing file",
                )
            )
        targets.add(inside)
    return out, targets


def lint_skill(
    directory: str | os.PathLike, *, folder_name: str | None = None
) -> list[LintProblem]:
    """Every problem of the skill folder at `directory` (empty list: it passes).

    `folder_name` overrides the folder's own name for the name check (to lint a staged copy).
    """
    root = Path(directory)
    skill = root / "SKILL.md"
    if not skill.is_file():
        return [LintProblem("SKILL.md", None, "missing", f"{root} has no SKILL.md")]
    problems: list[LintProblem] = []
    real = root.resolve()
    md_files: dict[str, Document] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() and real not in path.resolve().parents:
            problems.append(
                LintProblem(rel, None, "symlink-outside", "symlink points outside the skill folder")
            )
            continue
        if path.is_file() and path.suffix == ".md":
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                problems.append(LintProblem(rel, None, "encoding", "not UTF-8 text"))
                continue
            md_files[rel] = Document.parse(text)
    raw = [ln.text for ln in md_files["SKILL.md"].lines]
    if len(raw) >= MAX_LINES:
        problems.append(
            LintProblem(
                "SKILL.md",
                None,
                "too-long",
                f"SKILL.md has {len(raw)} lines (keep it under {MAX_LINES}; move details to references/)",
            )
        )
    fm, offset = _frontmatter(raw, folder_name or root.name)
    problems += fm
    linked_from_skill: set[str] = set()
    for rel, doc in md_files.items():
        if rel == "SKILL.md":
            body = Document(doc.lines[offset:])
            problems += _structure(rel, body, offset)
            found, linked_from_skill = _links(rel, body, offset, root)
        else:
            problems += _structure(rel, doc, 0)
            found, _ = _links(rel, doc, 0, root)
        problems += found
    refs = root / "references"
    if refs.is_dir():
        for path in sorted(refs.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and rel not in linked_from_skill:
                problems.append(
                    LintProblem(rel, None, "unlinked-reference", "not linked from SKILL.md")
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.skill.lint",
        description="Lint an Agent Skills folder: print each problem; exit 1 if any, 0 if none. "
        "Lines worded like an instruction to the agent are printed as warnings, which do not "
        "change the exit status.",
    )
    parser.add_argument("skill_dir", metavar="SKILL_DIR", help="the folder holding SKILL.md")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): a status, as lint's own
        return int(exc.code or 0)
    problems = lint_skill(args.skill_dir)
    for p in problems:
        print(p)
    warnings = review_skill(args.skill_dir) if Path(args.skill_dir, "SKILL.md").is_file() else []
    for w in warnings:
        print(f"warning: {w}")
    counts = f"{len(problems)} problem(s)" if problems else "ok"
    print(counts + (f", {len(warnings)} warning(s)" if warnings else ""), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
