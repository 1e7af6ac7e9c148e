"""A skill folder as the agent sees it: SKILL.md in the system prompt, other files through a tool.

``Skill.load(dir)`` reads SKILL.md (frontmatter + body) and every other text file of the folder
into memory, so the ``read_skill_file`` tool can only ever return files of the skill. A skill
splits into ablation units: the sections of SKILL.md (its most-used heading level) and its files;
``without(unit)`` is the skill with one unit left out, for leave-one-out attribution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from pipeline.evaluate.env import Tool, ToolError
from pipeline.ids import digest
from pipeline.skill.folder import SkillError

MAX_FILE_BYTES = 200_000
MAX_READ_CHARS = 20_000
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Section:
    title: str
    level: int
    start: int  # first line (the heading), 0-based in the body
    end: int  # one past the last line


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    frontmatter: str  # the raw YAML between the --- lines ('' if none)
    body: str
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text, SKILL.md excluded
    root: str | None = None
    variant: str = "full"  # or "without:<unit>"

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | Path) -> Skill:
        root = Path(directory)
        skill_md = root / "SKILL.md"
        if not skill_md.is_file():
            raise SkillError(f"{root}: no SKILL.md (a skill folder holds SKILL.md)")
        try:
            text = skill_md.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SkillError(f"{skill_md}: not UTF-8 text: {exc}") from exc
        frontmatter, body = split_frontmatter(text)
        try:
            meta = yaml.safe_load(frontmatter) if frontmatter else {}
        except yaml.YAMLError as exc:
            raise SkillError(f"{skill_md}: frontmatter is not valid YAML: {exc}") from exc
        if not isinstance(meta, dict):
            raise SkillError(f"{skill_md}: frontmatter must be a mapping")
        resolved = root.resolve()
        files = {}
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if (
                rel == "SKILL.md"
                or not path.is_file()
                or any(p.startswith(".") for p in rel.split("/"))
            ):
                continue
            if not path.resolve().is_relative_to(resolved) or path.stat().st_size > MAX_FILE_BYTES:
                continue  # links out of the folder and large assets are not offered
            try:
                files[rel] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # binary assets are not readable as text
        return cls(
            name=str(meta.get("name") or root.name),
            description=str(meta.get("description") or ""),
            frontmatter=frontmatter,
            body=body,
            files=files,
            root=str(root),
        )

    # -- identity --------------------------------------------------------------------------
    @property
    def digest(self) -> str:
        return digest("skill", self.frontmatter, self.body, self.files)

    @property
    def skill_md(self) -> str:
        return f"---\n{self.frontmatter}\n---\n{self.body}" if self.frontmatter else self.body

    # -- structure -------------------------------------------------------------------------
    def sections(self) -> list[Section]:
        """Sections at the shallowest heading level used at least twice (fenced code skipped)."""
        lines = self.body.split("\n")
        heads, fenced = [], False
        for i, line in enumerate(lines):
            if _FENCE.match(line):
                fenced = not fenced
                continue
            m = None if fenced else _HEADING.match(line)
            if m:
                heads.append((i, len(m.group(1)), m.group(2).strip()))
        if not heads:
            return []
        levels = sorted({lvl for _, lvl, _ in heads})
        level = next((lv for lv in levels if sum(h[1] == lv for h in heads) >= 2), levels[0])
        out = []
        for k, (i, lvl, title) in enumerate(heads):
            if lvl != level:
                continue
            end = next((j for j, lv, _ in heads[k + 1 :] if lv <= level), len(lines))
            out.append(Section(title, lvl, i, end))
        return out

    def units(self) -> list[str]:
        """Ablation units: section titles, then file paths."""
        return [s.title for s in self.sections()] + list(self.files)

    def without(self, unit: str) -> Skill:
        """This skill with one section (by title) or one file (by path) left out."""
        if unit in self.files:
            files = {k: v for k, v in self.files.items() if k != unit}
            return replace(self, files=files, variant=f"without:{unit}")
        for s in self.sections():
            if s.title == unit:
                lines = self.body.split("\n")
                body = "\n".join(lines[: s.start] + lines[s.end :])
                return replace(self, body=body, variant=f"without:{unit}")
        raise SkillError(f"skill {self.name}: no section or file {unit!r}")

    # -- what the agent sees ---------------------------------------------------------------
    def prompt(self) -> str:
        parts = [f"# Skill: {self.name}"]
        if self.description:
            parts.append(self.description)
        parts.append(self.body.strip())
        if self.files:
            listing = "\n".join(f"- {path}" for path in self.files)
            parts.append(
                "Files of this skill (read one with the `read_skill_file` tool when it applies):\n"
                + listing
            )
        return "\n\n".join(parts)

    def read(self, path: str) -> str:
        key = path.strip().lstrip("./")
        if key in ("SKILL.md", ""):
            return self.skill_md
        if key not in self.files:
            raise ToolError(
                f"no file {path!r} in the skill; files: {', '.join(['SKILL.md', *self.files])}"
            )
        text = self.files[key]
        if len(text) > MAX_READ_CHARS:
            return text[:MAX_READ_CHARS] + f"\n... (cut at {MAX_READ_CHARS} characters)"
        return text

    def tools(self) -> list[Tool]:
        return [
            Tool(
                READ_TOOL,
                "Read a file of the loaded skill (SKILL.md or a file it lists).",
                {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "description": "e.g. references/x.md"}
                    },
                    "required": ["path"],
                },
                lambda args: self.read(str(args.get("path", ""))),
            )
        ]


READ_TOOL = "read_skill_file"


def split_frontmatter(text: str) -> tuple[str, str]:
    """(YAML between the leading --- lines, the rest); ('', text) when there is none."""
    if text.startswith("---"):
        lines = text.split("\n")
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :])
    return "", text


def normalise_title(text: str) -> str:
    """Lower-case words only: how a title is matched against what the agent wrote."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())
