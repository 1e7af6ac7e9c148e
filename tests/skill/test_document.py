import pytest

from pipeline.skill.document import (
    Document,
    FrontmatterError,
    find_headings,
    find_sections,
    norm_title,
    parse_frontmatter,
    slug,
    split_frontmatter_text,
)

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


# -- the one set of Markdown rules, read the same way by every stage -------------------------
TRICKY = """# Title ##
#no space is text
####### seven is text
  # indented is text
Setext is text
==============
~~~
# in a tilde fence
~~~
##\tTabbed
```python
## in a backtick fence
```
### Deep
text
## Last
"""


def test_heading_rules():
    lines = TRICKY.split("\n")
    assert [(h.index, h.level, h.title) for h in find_headings(lines)] == [
        (0, 1, "Title"),
        (9, 2, "Tabbed"),
        (13, 3, "Deep"),
        (15, 2, "Last"),
    ]
    assert [(s.title, s.start, s.end) for s in find_sections(lines)] == [
        ("Title", 0, len(lines)),
        ("Tabbed", 9, 15),  # its subsection belongs to it
        ("Deep", 13, 15),
        ("Last", 15, len(lines)),
    ]
    assert find_headings(["```", "# open fence never closed"]) == []


def test_every_stage_reads_the_same_headings(tmp_path):
    from pipeline.analyse.sections import parse_sections
    from pipeline.evaluate.skill import Skill

    text = "---\nname: s\ndescription: '# not a heading'\n---\n" + TRICKY
    titles = [h.title for h in Document.parse(text, with_frontmatter=True).headings()]
    assert titles == ["Title", "Tabbed", "Deep", "Last"]
    assert [s.heading for s in parse_sections(text)] == titles
    (tmp_path / "SKILL.md").write_text(text)
    assert [s.title for s in Skill.load(tmp_path).sections()] == ["Tabbed", "Last"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("---\na: 1\n---\nbody", ("a: 1", "body")),
        (" --- \na: 1\n---  \nbody\n", ("a: 1", "body\n")),  # spaces around the marks
        ("---\n---\n", ("", "")),
        ("body only", ("", "body only")),
        ("---\na: 1\nno closing\n", ("", "---\na: 1\nno closing\n")),
        ("----\na: 1\n---\nbody", ("", "----\na: 1\n---\nbody")),  # a rule, not a block
        ("\n---\na: 1\n---\n", ("", "\n---\na: 1\n---\n")),  # must be the first line
    ],
)
def test_frontmatter_text_split(text, expected):
    assert split_frontmatter_text(text) == expected


def test_frontmatter_parse_and_title_norm():
    assert parse_frontmatter("") == {} and parse_frontmatter("a: [1]") == {"a": [1]}
    with pytest.raises(FrontmatterError, match="mapping"):
        parse_frontmatter("just text")
    assert norm_title("  Book   FLIGHT ") == norm_title("book flight") == "book flight"
    assert norm_title("Book-flight") != norm_title("Book flight")
