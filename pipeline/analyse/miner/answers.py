"""Final answers against the grader's correct answer: how an answer went wrong.

Answers are compared after the usual exact-match normalisation (lower case, punctuation and
articles dropped). A wrong answer is classed by its words against the correct answer's:
extra words around the right one, a fragment of it, an overlap in other words, or something
else entirely; and we look for the correct answer in what the agent had read (its tool results).
"""

from __future__ import annotations

import re
import string
import unicodedata

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "“”‘’–—"})

CLASSES = {
    "extra_words": "the answer wraps the right one in extra words",
    "fragment": "the answer is only part of the right one",
    "overlap": "the answer shares some words with the right one but not its wording",
    "different": "the answer names something else",
}


def normalise_answer(text: str | None) -> str:
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def classify(answer: str, correct: str) -> str | None:
    """None when the answer matches; else one of CLASSES."""
    a, c = normalise_answer(answer), normalise_answer(correct)
    if not c or a == c:
        return None
    aw, cw = a.split(), c.split()
    if cw and _contains(aw, cw):
        return "extra_words"
    if aw and _contains(cw, aw):
        return "fragment"
    if set(aw) & set(cw):
        return "overlap"
    return "different"


def _contains(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


def find_in(texts: list[tuple[int, str]], correct: str) -> int | None:
    """The first step whose text holds the correct answer (as whole words), or None."""
    c = normalise_answer(correct)
    if len(c) < 2:
        return None
    pattern = re.compile(r"(?<!\w)" + re.escape(c) + r"(?!\w)")
    for step, text in texts:
        if pattern.search(normalise_answer(text)):
            return step
    return None
