"""A skill folder as the agent sees it: SKILL.md in the system prompt, other files through a tool.

``Skill.load(dir)`` reads SKILL.md (frontmatter + body) and every other text file of the folder
into memory, so the ``read_skill_file`` tool can only ever return files of the skill. A skill
splits into ablation units: the sections of SKILL.md (its most-used heading level) and its files;
``without(unit)`` is the skill with one unit left out, for leave-one-out attribution. Headings,
sections and frontmatter are read by `pipeline.skill.document`; this module picks the units.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.evaluate.env import Tool, ToolError
from pipeline.ids import digest
from pipeline.skill.document import (
    FrontmatterError,
    Section,
    find_sections,
    parse_frontmatter,
    split_frontmatter_text,
)
from pipeline.skill.folder import SkillError

MAX_FILE_BYTES = 200_000
MAX_READ_CHARS = 20_000


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
        frontmatter, body = split_frontmatter_text(text)
        try:
            meta = parse_frontmatter(frontmatter)
        except FrontmatterError as exc:
            raise SkillError(f"{skill_md}: {exc}") from exc
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
        """Sections at the shallowest heading level used at least twice (fenced code skipped);
        lines are counted in the body."""
        every = find_sections(self.body.split("\n"))
        if not every:
            return []
        levels = sorted({s.level for s in every})
        level = next((lv for lv in levels if sum(s.level == lv for s in every) >= 2), levels[0])
        return [s for s in every if s.level == level]

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
