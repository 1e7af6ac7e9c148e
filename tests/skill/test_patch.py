import pytest

from pipeline.skill.document import Document
from pipeline.skill.folder import SkillFolder
from pipeline.skill.patch import PatchOp, apply_op, apply_patch

BASE = """# Policy

Intro.

## Book flight

- Ask for the user id first.

- Payment: at most one certificate.

## Cancel flight

- Cancel within 24 hours.
"""


def folder() -> SkillFolder:
    doc = Document.parse(BASE)
    doc.frontmatter = {"name": "p", "description": "d"}
    return SkillFolder({"SKILL.md": doc, "references/old.md": Document.parse("# Old\n\nx\n")})


def body(f: SkillFolder, path: str = "SKILL.md") -> str:
    doc = f.files[path]
    return "\n".join(ln.text for ln in doc.lines)


def test_append_adds_a_block_at_the_end_of_the_section_and_tags_it():
    f = folder()
    res = apply_op(
        f, PatchOp("append", "SKILL.md", section="Book flight", text="- New rule.", item="i1")
    )
    assert res.status == "applied"
    text = body(f)
    assert "- Payment: at most one certificate.\n\n- New rule.\n\n## Cancel flight" in text
    line = next(ln for ln in f.skill.lines if ln.text == "- New rule.")
    assert (line.origin, line.item) == ("added", "i1")


def test_append_to_the_last_section_and_to_a_missing_one():
    f = folder()
    assert (
        apply_op(f, PatchOp("append", "SKILL.md", section="Cancel flight", text="- z")).status
        == "applied"
    )
    assert body(f).endswith("- Cancel within 24 hours.\n\n- z")
    res = apply_op(f, PatchOp("append", "SKILL.md", section="Refund", text="- y"))
    assert res.status == "anchor_missing" and "Refund" in res.message


def test_add_section_then_duplicate_is_rejected():
    f = folder()
    assert (
        apply_op(f, PatchOp("add_section", "SKILL.md", section="Refund", text="- r")).status
        == "applied"
    )
    assert body(f).endswith("- Cancel within 24 hours.\n\n## Refund\n\n- r")
    res = apply_op(f, PatchOp("add_section", "SKILL.md", section="refund", text="- again"))
    assert res.status == "rejected" and "already exists" in res.message
    apply_op(f, PatchOp("add_section", "SKILL.md", section="Deep", anchor="level:3", text="- d"))
    assert "### Deep" in body(f)


def test_insert_after_and_before_an_anchor_line():
    f = folder()
    ops = [
        PatchOp(
            "insert_after",
            "SKILL.md",
            section="Book flight",
            anchor="user id first",
            text="  - sub",
        ),
        PatchOp(
            "insert_before", "SKILL.md", section="Book flight", anchor="Payment:", text="- pre"
        ),
    ]
    assert [r.status for r in apply_patch(f, ops)] == ["applied", "applied"]
    assert "- Ask for the user id first.\n  - sub\n\n- pre\n- Payment" in body(f)


def test_insert_with_missing_or_ambiguous_anchor_is_reported():
    f = folder()
    missing = apply_op(
        f,
        PatchOp("insert_after", "SKILL.md", section="Book flight", anchor="no such text", text="x"),
    )
    assert missing.status == "anchor_missing" and "not found" in missing.message
    # the anchor is searched only inside its section
    other = apply_op(
        f, PatchOp("insert_after", "SKILL.md", section="Book flight", anchor="24 hours", text="x")
    )
    assert other.status == "anchor_missing"
    apply_op(f, PatchOp("append", "SKILL.md", section="Book flight", text="- Payment: again"))
    twice = apply_op(
        f, PatchOp("insert_after", "SKILL.md", section="Book flight", anchor="Payment:", text="x")
    )
    assert twice.status == "rejected" and "matches 2 lines" in twice.message
    assert (
        apply_op(f, PatchOp("insert_after", "SKILL.md", section="Book flight", text="x")).status
        == "rejected"
    )


def test_replace_within_a_line_and_across_lines():
    f = folder()
    res = apply_op(
        f,
        PatchOp(
            "replace",
            "SKILL.md",
            section="Book flight",
            anchor="one certificate",
            text="one travel certificate",
            item="r1",
        ),
    )
    assert res.status == "applied"
    line = next(ln for ln in f.skill.lines if "travel certificate" in ln.text)
    assert line.text == "- Payment: at most one travel certificate." and line.origin == "revised"
    res = apply_op(
        f,
        PatchOp(
            "replace",
            "SKILL.md",
            section="Book flight",
            anchor="first.\n\n- Payment",
            text="first.\n- Payment",
        ),
    )
    assert res.status == "applied"
    assert "- Ask for the user id first.\n- Payment: at most one travel certificate." in body(f)
    gone = apply_op(
        f, PatchOp("replace", "SKILL.md", section="Cancel flight", anchor="user id", text="x")
    )
    assert gone.status == "anchor_missing"


def test_delete_section_and_files():
    f = folder()
    assert (
        apply_op(f, PatchOp("delete_section", "SKILL.md", section="Cancel flight")).status
        == "applied"
    )
    assert "Cancel" not in body(f)
    assert (
        apply_op(f, PatchOp("delete_section", "SKILL.md", section="Cancel flight")).status
        == "anchor_missing"
    )
    assert (
        apply_op(f, PatchOp("create_file", "references/new.md", text="# New\n\nbody")).status
        == "applied"
    )
    assert isinstance(f.files["references/new.md"], Document)
    assert apply_op(f, PatchOp("create_file", "references/new.md", text="x")).status == "rejected"
    assert apply_op(f, PatchOp("delete_file", "references/old.md")).status == "applied"
    assert apply_op(f, PatchOp("delete_file", "references/old.md")).status == "anchor_missing"
    assert apply_op(f, PatchOp("delete_file", "SKILL.md")).status == "rejected"
    assert apply_op(f, PatchOp("create_file", "scripts/run.sh", text="echo hi")).status == "applied"
    assert f.files["scripts/run.sh"] == b"echo hi"


def test_a_linked_file_is_not_deleted_and_a_section_takes_its_own_files_along():
    f = folder()
    refund = "## Refund\n\n- See [refunds](references/refund.md) and [old](references/old.md#x).\n"
    f.skill.lines += Document.parse(refund).lines
    f.files["references/refund.md"] = Document.parse("# Refund\n\nr\n")
    f.files["references/guide.md"] = Document.parse("# Guide\n\n[back](old.md)\n")
    res = apply_op(f, PatchOp("delete_file", "references/refund.md"))
    assert res.status == "rejected" and "still linked from SKILL.md" in res.message
    res = apply_op(f, PatchOp("delete_section", "SKILL.md", section="Refund"))
    # refund.md was linked from the section only; old.md is still linked from guide.md
    assert res.status == "applied" and res.message == "also deleted references/refund.md"
    assert "references/refund.md" not in f.files and "references/old.md" in f.files
    res = apply_op(f, PatchOp("delete_file", "references/old.md"))
    assert res.status == "rejected" and "references/guide.md" in res.message
    res = apply_op(f, PatchOp("delete_section", "SKILL.md", section="Policy"))
    assert res.status == "rejected" and "title" in res.message and "## Book flight" in body(f)


@pytest.mark.parametrize(
    "path", ["../outside.md", "references/../../x.md", "/etc/passwd", "C:/x.md", "a\\b.md", "", "."]
)
def test_paths_outside_the_folder_are_rejected(path):
    f = folder()
    res = apply_op(f, PatchOp("create_file", path, text="x"))
    assert res.status == "rejected"
    assert set(f.files) == {"SKILL.md", "references/old.md"}


def test_unknown_op_is_rejected_and_ops_round_trip_through_dicts():
    f = folder()
    assert apply_op(f, PatchOp("rewrite_everything", "SKILL.md")).status == "rejected"
    op = PatchOp("append", "SKILL.md", section="S", text="t", cluster_ids=["c"], item="i")
    assert PatchOp.from_dict(op.to_dict()) == op
    assert op.op_id == PatchOp.from_dict(op.to_dict()).op_id


def test_per_line_tags_for_created_files():
    f = folder()
    op = PatchOp(
        "create_file", "references/r.md", text="# R\n\n- a\n- b", tags=[None, None, "x", "y"]
    )
    apply_op(f, op)
    lines = f.files["references/r.md"].lines
    assert [(ln.item, ln.origin) for ln in lines] == [
        (None, "structure"),
        (None, "structure"),
        ("x", "added"),
        ("y", "added"),
    ]


def test_append_to_a_section_with_subsections_lands_before_them():
    f = folder()
    res = apply_op(f, PatchOp("append", "SKILL.md", section="Policy", text="- General rule."))
    assert res.status == "applied"
    assert body(f).startswith("# Policy\n\nIntro.\n\n- General rule.\n\n## Book flight")
