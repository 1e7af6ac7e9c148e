"""The scorer on the cases the official WikiTableQuestions evaluator documents."""

from __future__ import annotations

import pytest

from pipeline.evaluate.wikitablequestions import scorer
from pipeline.evaluate.wikitablequestions.scorer import (
    DateValue,
    NumberValue,
    StringValue,
    canonical,
    check_denotation,
    normalize,
    score,
    to_value,
    to_value_list,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Café", "cafe"),  # remove diacritics (é -> e)
        ("Ångström", "angstrom"),
        ("‘quoted’ and `tick` ", "'quoted' and 'tick'"),  # smart quotes to ASCII
        ("“Hello”", "hello"),  # smart double quotes, then the outermost quotes go
        ("1990‐1991–1992—1993−1994", "1990-1991-1992-1993-1994"),  # dashes to ASCII
        ("Paris[1]", "paris"),  # citations
        ("Paris[citation needed]", "paris"),
        ("Paris†", "paris"),
        ("Paris*#", "paris"),
        ("[1]", ""),  # a citation alone is still removed
        ("Bangkok (Thailand)", "bangkok"),  # trailing details in parentheses
        ("Bangkok (Thailand) (city)", "bangkok"),
        ("(Thailand)", "(thailand)"),  # ... but not a string that is only a parenthesis
        ('"Memo from Turner"', "memo from turner"),  # outermost quotation marks
        ("Ja.", "ja"),  # final period
        ("  Many   SPACES\there  ", "many spaces here"),  # collapse whitespace, lowercase
        ('"Song" (1999)[2]', "song"),  # rules repeat until nothing changes
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_value_types():
    assert to_value("2") == NumberValue(2, "2")
    assert isinstance(to_value("2.5"), NumberValue)
    assert isinstance(to_value("1990-01-12"), DateValue)
    assert isinstance(to_value("xx-01-02"), DateValue)  # January 2nd of an unknown year
    assert isinstance(to_value("Bangkok"), StringValue)
    assert isinstance(to_value("nan"), StringValue)  # NaN and infinity are not numbers
    assert isinstance(to_value("inf"), StringValue)
    # only the year known: the date becomes the number of that year
    year = to_value("1990-xx-xx")
    assert isinstance(year, NumberValue) and year.amount == 1990


def test_numbers_match_within_tolerance():
    assert to_value("2").match(to_value("2.0"))
    assert to_value("0.1").match(to_value("0.1000000001"))
    assert not to_value("2").match(to_value("3"))
    # the string form still matches across types
    assert to_value("1990").match(to_value("1990-xx-xx"))


def test_dates_match_on_every_field():
    assert to_value("1990-01-12").match(to_value("1990-01-12"))
    # exact match on all fields: xx-01-12 and 1990-01-12 do not match
    assert not to_value("xx-01-12").match(to_value("1990-01-12"))
    assert not to_value("1990-01-12").match(to_value("xx-01-12"))
    assert DateValue.__name__ and scorer.parse_date("1990-13-01") is None
    assert scorer.parse_date("xx-xx-xx") is None


def test_target_reading_from_canonical_value():
    # the evaluator reads the gold side through CoreNLP's value when it has one
    gold = to_value("twelve thousand", "12000")
    assert gold.match(to_value("12000"))
    assert gold.match(to_value("twelve thousand"))


def test_denotation_is_a_set_of_equal_size():
    gold = to_value_list(["Clemson", "Colorado State", "Connecticut"])
    assert check_denotation(gold, to_value_list(["connecticut", "Clemson", "Colorado State"]))
    assert not check_denotation(gold, to_value_list(["Clemson", "Colorado State"]))
    assert not check_denotation(gold, to_value_list(["Clemson", "Colorado State", "UConn"]))
    # duplicates collapse, as in a set: numbers by amount
    assert len(to_value_list(["2", "2.0"])) == 1
    assert len(to_value_list(["a", "A"])) == 1
    assert check_denotation(to_value_list(["4"]), to_value_list(["4", "4.0"]))


@pytest.mark.parametrize(
    "written, reading",
    [
        ("12,467", "12467"),
        ("1,000,000.5", "1000000.5"),
        ("August 15, 2009", "2009-08-15"),
        ("22 October 1976", "1976-10-22"),
        ("November 2009", "2009-11-xx"),
        ("December 21", "xx-12-21"),
        ("Saturday, May 11", "xx-05-11"),
        ("Sept. 3, 1999", "1999-09-03"),
        ("January", None),  # a month alone stays a string, as CoreNLP's reading would not parse
        ("12,46", None),
        ("Bangkok, Thailand", None),
        ("May 40, 2000", None),
    ],
)
def test_canonical(written, reading):
    assert canonical(written) == reading


@pytest.mark.parametrize(
    "gold, predicted, ok",
    [
        (["12,467"], ["12467"], True),
        (["12,467"], ["12,467"], True),
        (["12,467"], ["12466"], False),
        (["August 15, 2009"], ["2009-08-15"], True),
        (["August 15, 2009"], ["August 15, 2009"], True),
        (["August 15, 2009"], ["2009-08-16"], False),
        (["November 2009"], ["2009-11-xx"], True),
        (["1979"], ["1979.0"], True),
        (["Bangkok, Thailand"], ["bangkok, thailand"], True),
        (["Javier Díaz"], ["Javier Diaz"], True),
        (["Ja."], ["ja"], True),
        (["no"], ["No"], True),
        (["0.11 mts"], ["0.11"], False),
        (["Clemson", "Colorado State"], ["Colorado State", "Clemson"], True),
        (["Clemson", "Colorado State"], ["Clemson"], False),
    ],
)
def test_score(gold, predicted, ok):
    assert score(gold, predicted) is ok


def test_tsv_unescape():
    assert scorer.tsv_unescape(r"a\nb\pc\\d") == "a\nb|c\\d"
    assert scorer.tsv_unescape_list(r"x|y\pz") == ["x", "y|z"]
