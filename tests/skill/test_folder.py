import os
from pathlib import Path

import pytest

from pipeline.skill.folder import (
    SkillError,
    SkillPathError,
    check_target,
    load_skill,
    stage_skill,
    swap_into_place,
)

SKILL = "---\nname: s\ndescription: d\n---\n\n# S\n\nText.\n"


def make(tmp_path: Path) -> Path:
    root = tmp_path / "s"
    (root / "references").mkdir(parents=True)
    (root / "SKILL.md").write_text(SKILL)
    (root / "references" / "a.md").write_text("# A\n\nx\n")
    (root / "scripts").mkdir()
    (root / "scripts" / "t.sh").write_bytes(b"\x00\x01")
    return root


def test_load_keeps_markdown_as_documents_and_other_files_as_bytes(tmp_path):
    f = load_skill(make(tmp_path))
    assert set(f.files) == {"SKILL.md", "references/a.md", "scripts/t.sh"}
    assert f.skill.frontmatter["name"] == "s"
    assert f.files["scripts/t.sh"] == b"\x00\x01"
    assert f.render()["SKILL.md"].decode() == SKILL


def test_missing_skill_and_bad_frontmatter_name_the_file(tmp_path):
    with pytest.raises(SkillError, match="no SKILL.md"):
        load_skill(tmp_path)
    (tmp_path / "SKILL.md").write_text("# no frontmatter\n")
    with pytest.raises(SkillError, match="SKILL.md: SKILL.md must start"):
        load_skill(tmp_path)


def test_symlink_to_a_file_outside_is_refused(tmp_path):
    root = make(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    os.symlink(secret, root / "references" / "leak.md")
    with pytest.raises(SkillPathError, match="leak.md: symlink points outside"):
        load_skill(root)


def test_symlink_to_a_folder_outside_is_refused(tmp_path):
    root = make(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.md").write_text("x")
    os.symlink(outside, root / "more")
    with pytest.raises(SkillPathError, match="more: symlink points outside"):
        load_skill(root)


def test_symlink_inside_the_folder_is_read_as_a_copy(tmp_path):
    root = make(tmp_path)
    os.symlink(root / "references" / "a.md", root / "references" / "b.md")
    f = load_skill(root)
    assert f.render()["references/b.md"] == f.render()["references/a.md"]


def test_output_never_overlaps_the_base(tmp_path):
    base = make(tmp_path)
    for out in (base, base / "inner", tmp_path):
        with pytest.raises(SkillError, match="overlaps the base skill"):
            check_target(out, base)
    check_target(tmp_path / "out" / "s", base)
    check_target(base, None)


def test_stage_then_swap_replaces_the_old_folder_whole(tmp_path):
    f = load_skill(make(tmp_path))
    out = tmp_path / "out" / "s"
    out.mkdir(parents=True)
    (out / "stale.md").write_text("old")
    tmp = stage_skill(f, out)
    assert tmp.parent == out.parent and tmp.name.startswith(".s.tmp-")
    assert (out / "stale.md").exists()  # untouched until the swap
    swap_into_place(tmp, out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "SKILL.md",
        "references/a.md",
        "scripts/t.sh",
    ]
    assert [p.name for p in out.parent.iterdir()] == ["s"]  # no temp or old folder left
