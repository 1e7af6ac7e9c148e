"""The one prompt loader: file lookup, versions, and the placeholder rule every stage shares."""

from __future__ import annotations

import pytest

from pipeline.prompts import load_prompt

BODY = (
    '<!-- a note -->\n## system\nAnswer as {"a": {"b": [1]}} for {Name}.\n## user\n{task} / {n}\n'
)


def test_only_lower_case_names_are_placeholders(tmp_path):
    (tmp_path / "ask.md").write_text(BODY)
    p = load_prompt(tmp_path, "ask")
    assert p.fields() == {"task", "n"}
    system, user = p.messages(task="t", n=3, unused="ignored")
    assert system["content"] == 'Answer as {"a": {"b": [1]}} for {Name}.'
    assert user["content"] == "t / 3"
    with pytest.raises(KeyError, match="no value for {n}"):
        p.text("user", task="t")
    with pytest.raises(KeyError, match="no section 'extra'"):
        p.text("extra")


def test_versions_and_file_lookup(tmp_path):
    (tmp_path / "ask.md").write_text(BODY)
    plain = load_prompt(tmp_path, "ask")
    assert len(plain.version) == 8 and plain.tag == f"ask-{plain.version}"
    assert load_prompt(tmp_path, "ask").version == plain.version, "same text, same version"
    (tmp_path / "ask.md").write_text(BODY + "\n.")
    assert load_prompt(tmp_path, "ask").version != plain.version
    for name in ("ask-v2.md", "ask-v10.md", "ask-vnext.md", "ask-v3-draft.md"):
        (tmp_path / name).write_text(BODY.replace("{n}", name))
    newest = load_prompt(tmp_path, "ask")
    assert newest.version.startswith("v10-") and newest.tag.startswith("ask-v10-")
    assert newest.text("user", task="t") == "t / ask-v10.md"
    (tmp_path / "bare.md").write_text("## system\nS\n")
    with pytest.raises(ValueError, match="needs a '## system' and a '## user' section"):
        load_prompt(tmp_path, "bare")
    with pytest.raises(FileNotFoundError, match="no prompt 'none'"):
        load_prompt(tmp_path, "none")
