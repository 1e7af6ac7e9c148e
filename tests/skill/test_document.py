import pytest

from pipeline.skill.document import Document, FrontmatterError, slug

TEXT = """---
name: demo-skill
description: A demo.
---

# Demo

Intro line.

## Book flight

- rule one

```
## not a heading
```

### Details

- nested

## Cancel flight

- rule two
"""


def test_parse_render_round_trip():
    doc = Document.parse(TEXT, with_frontmatter=True)
    assert doc.frontmatter == {"name": "demo-skill", "description": "A demo."}
    assert doc.render() == TEXT
    assert doc.offset == 4


def test_headings_skip_code_fences_and_sections_nest():
    doc = Document.parse(TEXT, with_frontmatter=True)
    titles = [(h.level, h.title) for h in doc.headings()]
    assert titles == [(1, "Demo"), (2, "Book flight"), (3, "Details"), (2, "Cancel flight")]
    head, end = doc.find_section("book FLIGHT")
    assert doc.lines[head.index].text == "## Book flight"
    assert doc.lines[end].text == "## Cancel flight"  # the subsection belongs to it
    assert doc.find_section("Refund") is None
    sections = doc.section_of()
    assert (
        sections[doc.lines.index(next(ln for ln in doc.lines if ln.text == "- nested"))]
        == "Details"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("# no frontmatter\n", "must start"),
        ("---\nname: x\n", "no closing"),
        ("---\n- a\n- b\n---\n", "mapping"),
        ("---\nname: [\n---\n", "not valid YAML"),
    ],
)
def test_frontmatter_errors(text, message):
    with pytest.raises(FrontmatterError, match=message):
        Document.parse(text, with_frontmatter=True)


def test_slug():
    assert slug("Book flight") == "book-flight"
    assert slug("  Modify / cancel: flights!! ") == "modify-cancel-flights"
    assert slug("???") == "section"
