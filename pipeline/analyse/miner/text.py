"""Small, pure helpers the miner's rules share: arguments, error patterns, wording.

Nothing here knows a domain: tools, arguments and messages are handled by their shape (JSON
objects, one string argument, numbers and identifiers inside error messages).
"""

from __future__ import annotations

import json
import re
from typing import Any

_NUMBER = re.compile(r"(?<![A-Za-z_])-?\d+(?:[.,]\d+)*(?![A-Za-z_])")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b")
_IDENT = re.compile(r"\b(?=[A-Za-z_./-]*\d)[A-Za-z0-9_./-]*[A-Za-z_][A-Za-z0-9_./-]*\b")
_BRACKETED = re.compile(r"\[[^\[\]]*\]|\{[^{}]*\}")
_QUOTED = re.compile(r"'[^'\n]{1,200}'|\"[^\"\n]{1,200}\"|`[^`\n]{1,200}`")
_PATH = re.compile(r"(?:[\w.-]*/)+[\w.-]+")
_ERROR_LINE = re.compile(
    r"(?i)(error|exception|traceback|failed|failure|not found|denied|invalid|cannot|could not|"
    r"unable|refused|timed? ?out|no such|does not|doesn't|missing|unknown)"
)
_WS = re.compile(r"\s+")


def parse_args(tool_args: str | None) -> Any:
    """The call's arguments as Python data; text that is not JSON stays a string."""
    if tool_args is None or tool_args == "":
        return {}
    try:
        return json.loads(tool_args)
    except (TypeError, ValueError):
        return tool_args


def normalise(value: Any) -> Any:
    """Comparable form of JSON data: integral floats become ints, dict keys sorted on dump."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def canonical(value: Any) -> str:
    return json.dumps(normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def main_string(args: Any) -> str | None:
    """The call's one string argument (a query, a command), if it has exactly one."""
    if isinstance(args, str):
        return args
    if isinstance(args, dict):
        strings = [v for v in args.values() if isinstance(v, str)]
        if len(strings) == 1 and len(args) <= 2:
            return strings[0]
    return None


_SHELL_SPLIT = re.compile(r"\s*(?:&&|\|\||;|\|)\s*")
_SETUP = {"cd", "export", "source", "set", "sudo", "env", "time"}


def command_head(text: str, n_words: int = 2) -> str:
    """The program a command line runs, in its first words: 'pip install', 'python -m pytest'.

    In a chain ('cd repo && pytest -x') the first segment that is not set-up is taken."""
    segments = [seg.split() for seg in _SHELL_SPLIT.split(text.strip()) if seg.strip()]
    chosen = next(
        (seg for seg in segments if seg[0] not in _SETUP), segments[0] if segments else []
    )
    out: list[str] = []
    words = iter(w for w in chosen if not (("=" in w) and not out))
    for word in words:
        if word == "-m" and out:
            out += ["-m", next(words, "")]
            break
        if word.startswith("-") or "/" in word:
            break
        out.append(word)
        if len(out) >= n_words:
            break
    return " ".join(w for w in out if w)


def error_line(text: str | None) -> str:
    """The most telling line of an error result: the last line that names an error."""
    if not text:
        return ""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    flagged = [ln for ln in lines if _ERROR_LINE.search(ln)]
    return flagged[-1] if flagged else lines[0]


def error_pattern(text: str | None, max_chars: int = 90) -> str:
    """An error message with its particulars replaced, so the same failure groups together.

    'Error: flight HAT030 not available on date 2024-05-13' -> 'Error: flight <id> not available
    on date <date>'; "Could not find [Foo]. Similar: [...]" -> 'Could not find [...]. Similar: [...]'.
    """
    line = error_line(text)
    line = _BRACKETED.sub("[...]", line)
    line = _BRACKETED.sub("[...]", line)
    line = _QUOTED.sub("'...'", line)
    line = _DATE.sub("<date>", line)
    line = _PATH.sub("<path>", line)
    line = _IDENT.sub("<id>", line)
    line = _NUMBER.sub("<n>", line)
    line = _WS.sub(" ", line).strip()
    if len(line) > max_chars:
        cut = line[:max_chars].rsplit(" ", 1)[0]
        line = cut + " ..."
    return line


def shorten(value: Any, max_chars: int = 80) -> str:
    """A value as compact text for a lesson: JSON for data, the string itself for strings."""
    text = value if isinstance(value, str) else canonical(value)
    text = _WS.sub(" ", text).strip()
    return text if len(text) <= max_chars else text[: max_chars - 3].rstrip() + "..."


def quote(value: Any, max_chars: int = 80) -> str:
    """A value as it appears inside a sentence: strings in quotes, data as JSON."""
    text = shorten(value, max_chars)
    if not isinstance(value, str):
        return text
    return f'"{text}"' if "'" in text and '"' not in text else f"'{text}'"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else many or word + 's'}"


def words_of(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def string_change(old: str, new: str, error_text: str | None = None) -> str:
    """How a string argument was reformulated after a failure, in a few words."""
    if old == new:
        return "the same value"
    if error_text and len(new) > 2 and (f"'{new}'" in error_text or f'"{new}"' in error_text):
        return "a value copied from the error's suggestions"
    stripped = old.strip().strip("\"'`")
    if new.strip() == stripped and stripped != old.strip():
        return "the same value without quotes"
    old_w, new_w = words_of(old), words_of(new)
    if old_w and new_w and set(new_w) < set(old_w):
        return "a shorter value (words dropped)"
    if old_w and new_w and set(old_w) < set(new_w):
        return "a longer value (words added)"
    if set(old_w) & set(new_w):
        return "a reworded value"
    return "a different value"
