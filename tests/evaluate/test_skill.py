"""Skill folders as the agent sees them: sections, files, ablation, the confined read tool."""

from __future__ import annotations

import pytest

from pipeline.evaluate.env import ToolError
from pipeline.evaluate.skill import Skill, SkillError


def test_load(skill_dir):
    skill = Skill.load(skill_dir)
    assert skill.name == "table-answering"
    assert skill.description.startswith("How to answer")
    assert list(skill.files) == ["references/dates.md"]
    assert [s.title for s in skill.sections()] == [
        "Ordering questions",
        "Counting questions",
        "Numbers with commas",
    ]
    assert skill.units()[-1] == "references/dates.md"
    prompt = skill.prompt()
    assert prompt.startswith("# Skill: table-answering")
    assert "order by row_id" in prompt and "- references/dates.md" in prompt


def test_sections_skip_fenced_code_and_keep_subsections(tmp_path):
    (tmp_path / "SKILL.md").write_text(
        "# Top\n\n## A\ntext a\n### A.1\nmore a\n```\n## not a heading\n```\n## B\ntext b\n"
    )
    skill = Skill.load(tmp_path)
    sections = skill.sections()
    assert [s.title for s in sections] == ["A", "B"]
    without_a = skill.without("A")
    assert "text a" not in without_a.body and "more a" not in without_a.body
    assert "not a heading" not in without_a.body and "text b" in without_a.body
    assert without_a.variant == "without:A" and without_a.digest != skill.digest


def test_without_file_and_unknown_unit(skill_dir):
    skill = Skill.load(skill_dir)
    lean = skill.without("references/dates.md")
    assert lean.files == {} and "references/dates.md" not in lean.prompt()
    assert skill.files  # the original is untouched
    with pytest.raises(SkillError, match="no section or file 'Nope'"):
        skill.without("Nope")


def test_read_tool_is_confined(skill_dir, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    (skill_dir / "references" / "link.md").symlink_to(tmp_path / "secret.txt")
    (skill_dir / "logo.png").write_bytes(b"\x89PNG\x00\xff\xfe")
    skill = Skill.load(skill_dir)
    assert set(skill.files) == {"references/dates.md"}  # no link out, no binary
    (read,) = skill.tools()
    assert read.handler({"path": "references/dates.md"}).startswith("Dates:")
    assert read.handler({"path": "./references/dates.md"}).startswith("Dates:")
    assert read.handler({"path": "SKILL.md"}).startswith("---\nname: table-answering")
    for path in ("../secret.txt", "/etc/passwd", "references/link.md"):
        with pytest.raises(ToolError, match="no file"):
            read.handler({"path": path})
    ablated = skill.without("Counting questions")
    assert "Counting questions" not in ablated.tools()[0].handler({"path": "SKILL.md"})


def test_bad_folders(tmp_path):
    with pytest.raises(SkillError, match="no SKILL.md"):
        Skill.load(tmp_path)
    (tmp_path / "SKILL.md").write_text("---\nname: [unclosed\n---\nbody\n")
    with pytest.raises(SkillError, match="frontmatter is not valid YAML"):
        Skill.load(tmp_path)
    (tmp_path / "SKILL.md").write_text("no frontmatter\n")
    assert Skill.load(tmp_path).name == tmp_path.name
