"""Base-skill sections: headings in order, and lessons matched to them by the words involved."""

from __future__ import annotations

import pytest

from pipeline.analyse.sections import (
    SectionMatcher,
    derived_section,
    parse_sections,
    skill_sections,
    stem,
    words,
)
from tests.conftest import DATA

AIRLINE = DATA / "tau-bench-airline" / "base-skill"


def test_headings_of_the_demo_skill():
    assert skill_sections(AIRLINE) == [
        "Airline Agent Policy",
        "Domain Basic",
        "Book flight",
        "Modify flight",
        "Cancel flight",
        "Refund",
    ]
    assert skill_sections(AIRLINE / "SKILL.md") == skill_sections(AIRLINE)


def test_frontmatter_and_code_fences_are_not_headings():
    md = "---\nname: x\ndescription: '# not a heading'\n---\n# Title\n\n```\n# comment in code\n```\n\n## Usage ##\n\ntext\n#### Deep\n"
    sections = parse_sections(md)
    assert [(s.heading, s.level) for s in sections] == [("Title", 1), ("Usage", 2)]
    assert "#### Deep" in sections[1].body


def test_missing_skill_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no SKILL.md"):
        skill_sections(tmp_path)


@pytest.mark.parametrize(
    "tool,context,expected",
    [
        (
            "book_reservation",
            "Error: payment amount does not add up, total price is <n>",
            "Book flight",
        ),
        ("update_reservation_flights", "flight not available", "Modify flight"),
        ("update_reservation_baggages", "", "Modify flight"),
        ("update_reservation_passengers", "", "Modify flight"),
        ("cancel_reservation", "", "Cancel flight"),
        ("send_certificate", "", "Refund"),
        ("transfer_to_human_agents", "cancel_reservation", "Airline Agent Policy"),
        ("Search", "Could not find", None),
        ("bash", "ModuleNotFoundError", None),
    ],
)
def test_tools_match_the_sections_a_reader_would_pick(tool, context, expected):
    matcher = SectionMatcher.from_skill(AIRLINE)
    assert matcher.match(words(tool), words(context)) == expected


def test_words_and_derived_names():
    assert words("update_reservation_flights") == [stem("update"), "reservation", "flight"]
    assert words("getUserDetails") == ["get", stem("details")]
    assert stem("cancelled") == stem("cancel") == "cancel"
    assert stem("baggages") == stem("baggage") and stem("modified") == stem("modify")
    assert stem("updated") == stem("update") == stem("updating") and stem("class") == "class"
    assert derived_section("book_reservation") == "Book reservation"
    assert derived_section("getUser") == "Get user" and derived_section(None) == "General"
