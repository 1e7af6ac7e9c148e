"""The WikiTableQuestions scorer: the official evaluator's logic (version 1.0.2), in Python 3.

A prediction is correct when it has as many distinct values as the gold answer and every gold
value matches one predicted value. Values are strings, numbers or dates; two values match when
their normalised strings are equal, or both are numbers within 1e-6, or both are dates with equal
(year, month, day) fields (unknown fields included: ``xx-01-12`` does not match ``1990-01-12``).

The official evaluator reads the gold side's number and date readings from CoreNLP tags
(``targetCanon``), which the plain ``data/*.tsv`` files do not carry. ``canonical()`` stands in
for them: it reads thousands separators (``12,467`` -> 12467) and written dates (``August 15,
2009``, ``22 October 1976``, ``November 2009``, ``Saturday, May 11``) into the ``yyyy-mm-dd`` form
the evaluator parses. It is applied the same way to gold and predicted values, so an agent that
answers ``12467`` to a gold ``12,467`` is scored right, as it would be against the tagged data.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

_CITATION = re.compile(r"((?<!^)\[[^\]]*\]|\[\d+\]|[•♦†‡*#+])*$")
_PAREN = re.compile(r"(?<!^)( \([^)]*\))*$")
_QUOTED = re.compile(r'^"([^"]*)"$')


def normalize(text: str) -> str:
    """The official string normalisation, applied until it stops changing the string."""
    text = "".join(
        c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn"
    )
    text = re.sub(r"[‘’´`]", "'", text)
    text = re.sub(r"[“”]", '"', text)
    text = re.sub(r"[‐‑‒–—−]", "-", text)
    while True:
        before = text
        text = _CITATION.sub("", text.strip())
        text = _PAREN.sub("", text.strip())
        text = _QUOTED.sub(r"\1", text.strip())
        if text == before:
            break
    if text and text[-1] == ".":
        text = text[:-1]
    return re.sub(r"\s+", " ", text).lower().strip()


@dataclass(frozen=True)
class StringValue:
    normalized: str

    def match(self, other: Value) -> bool:
        return self.normalized == other.normalized


@dataclass(frozen=True, eq=False)
class NumberValue:
    """Equal (and deduplicated in a denotation) by amount alone, as in the evaluator."""

    amount: int | float
    normalized: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumberValue) and self.amount == other.amount

    def __hash__(self) -> int:
        return hash(("number", self.amount))

    def match(self, other: Value) -> bool:
        if self.normalized == other.normalized:
            return True
        return isinstance(other, NumberValue) and abs(self.amount - other.amount) < 1e-6


@dataclass(frozen=True, eq=False)
class DateValue:
    """Equal by (year, month, day); -1 marks an unknown field."""

    ymd: tuple[int, int, int]
    normalized: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DateValue) and self.ymd == other.ymd

    def __hash__(self) -> int:
        return hash(("date", self.ymd))

    def match(self, other: Value) -> bool:
        if self.normalized == other.normalized:
            return True
        return isinstance(other, DateValue) and self.ymd == other.ymd


Value = StringValue | NumberValue | DateValue


def parse_number(text: str) -> int | float | None:
    """int() then float(), as the official evaluator does; NaN and infinity are not numbers."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        amount = float(text)
    except ValueError:
        return None
    return None if math.isnan(amount) or math.isinf(amount) else amount


def parse_date(text: str) -> tuple[int, int, int] | None:
    """``yyyy-mm-dd`` with ``xx`` (``xxxx`` for the year) marking unknown fields."""
    parts = text.lower().split("-")
    if len(parts) != 3:
        return None
    try:
        year = -1 if parts[0] in ("xx", "xxxx") else int(parts[0])
        month = -1 if parts[1] == "xx" else int(parts[1])
        day = -1 if parts[2] == "xx" else int(parts[2])
    except ValueError:
        return None
    if year == month == day == -1:
        return None
    if not (month == -1 or 1 <= month <= 12) or not (day == -1 or 1 <= day <= 31):
        return None
    return year, month, day


def _amount(number: float) -> float:
    return int(number) if abs(number - round(number)) < 1e-6 else float(number)


def to_value(original: str, canon: str | None = None) -> Value:
    """A number if the canonical reading parses as one, else a date, else a string.

    A date with only the year known becomes the number of that year, as in the evaluator.
    """
    canon = canon or original
    amount = parse_number(canon)
    if amount is not None:
        return NumberValue(_amount(amount), normalize(original))
    ymd = parse_date(canon)
    if ymd is not None:
        if ymd[1] == ymd[2] == -1:
            return NumberValue(ymd[0], normalize(original))
        return DateValue(ymd, normalize(original))
    return StringValue(normalize(original))


def to_value_list(originals: list[str], canons: list[str | None] | None = None) -> list[Value]:
    """Distinct values of a denotation (the evaluator treats it as a set)."""
    canons = canons if canons is not None else [None] * len(originals)
    if len(canons) != len(originals):
        raise ValueError("originals and canonical readings differ in length")
    seen: dict[Value, None] = {}
    for original, canon in zip(originals, canons, strict=True):
        seen.setdefault(to_value(original, canon), None)
    return list(seen)


def check_denotation(target: list[Value], predicted: list[Value]) -> bool:
    """Same number of values, and every target value matches some predicted value."""
    if len(target) != len(predicted):
        return False
    return all(any(t.match(p) for p in predicted) for t in target)


# -- the stand-in for CoreNLP's readings of gold values ------------------------------------------

_MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?"
_DATE_FORMS = [
    re.compile(rf"^{_WEEKDAY}{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})$"),
    re.compile(rf"^{_WEEKDAY}(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH},?\s+(?P<year>\d{{4}})$"),
    re.compile(rf"^{_MONTH},?\s+(?P<year>\d{{4}})$"),
    re.compile(rf"^{_WEEKDAY}{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?$"),
    re.compile(rf"^{_WEEKDAY}(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH}$"),
]
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def canonical(text: str) -> str | None:
    """The ``yyyy-mm-dd`` or plain-number reading of a written value, or None if it has none."""
    value = " ".join(text.strip().split())
    if _GROUPED.match(value):
        return value.replace(",", "")
    lowered = value.lower()
    for form in _DATE_FORMS:
        m = form.match(lowered)
        if m:
            fields = m.groupdict()
            day = int(fields["day"]) if fields.get("day") else -1
            if day != -1 and not 1 <= day <= 31:
                return None
            year = fields.get("year") or "xx"
            month = _MONTHS[fields["month"]]
            return f"{year}-{month:02d}-{'xx' if day == -1 else f'{day:02d}'}"
    return None


def values(items: list[str]) -> list[Value]:
    """Values of a list of written answers, each read through ``canonical()``."""
    return to_value_list(items, [canonical(x) for x in items])


def score(gold: list[str], predicted: list[str]) -> bool:
    """True when the predicted answer list is a correct denotation of the gold one."""
    return check_denotation(values(gold), values(predicted))


def tsv_unescape(text: str) -> str:
    """Undo the TSV escapes of the dataset files: ``\\n`` newline, ``\\p`` pipe, ``\\\\``."""
    return text.replace(r"\n", "\n").replace(r"\p", "|").replace("\\\\", "\\")


def tsv_unescape_list(text: str) -> list[str]:
    """A ``|``-separated list of TSV-escaped items."""
    return [tsv_unescape(item) for item in text.split("|")]
