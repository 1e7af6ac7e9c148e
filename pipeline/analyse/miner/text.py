"""Small, pure helpers the miner's rules share: arguments, error patterns, wording.

Nothing here knows a domain: tools, arguments and messages are handled by their shape (JSON
objects, one string argument, numbers and identifiers inside error messages).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline.analyse.shell import split_command
from pipeline.console import plural  # noqa: F401  (the rules' wording)

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


# A program as a command line names it: lower-case, optionally by its path ('./run.sh').
_PROGRAM_WORD = re.compile(r"^(?:[\w.~-]*/)*([a-z_][a-z0-9_.+-]*)$")
_NOT_COMMANDS = {"for", "case", "select", "function", "fi", "done", "esac"}
_FILTERS = {"view", "search", "other"}  # families of programs that may read a pipe
# An exception whose whole message is one word: the word is a value ('AssertionError: span').
_LONE_VALUE = re.compile(r"^(\w*(?:Error|Exception)): *(\S+)$")


def command_head(text: str) -> str:
    """The program a command line stands for, with its subcommand: 'pip install', 'git diff',
    'pytest' (for `python -m pytest`), read by the shell parser (`pipeline.analyse.shell`).

    The call's exit status is its last program's (`a && b` ran b only after a worked), so the last
    program is taken, passing over set-up (`cd`, `ls`) and filters that read a pipe (`| tail`,
    `| grep x`). A heredoc's body is data, not commands; prose ('No changes are needed') names
    no program and gives ''."""
    actions = [
        a
        for a in split_command(text)
        if _PROGRAM_WORD.match(a.program) and a.program not in _NOT_COMMANDS
    ]
    if not actions:
        return ""
    main = [
        a
        for i, a in enumerate(actions)
        if a.family != "navigate" and not (i and a.family in _FILTERS and a.path is None)
    ]
    chosen = (main or actions)[-1]
    if chosen.path and chosen.text.startswith(chosen.path):
        return chosen.path.rsplit("/", 1)[-1]  # './run_tests.sh -x' runs run_tests.sh
    words = chosen.text.split()
    if words[1:3] == ["-m", chosen.program]:  # as written: 'python -m pytest'
        return " ".join([words[0].rsplit("/", 1)[-1], "-m", chosen.program])
    return f"{chosen.program} {chosen.subcommand}" if chosen.subcommand else chosen.program


# Shell tools wrap a command's output in markers of their own: mini-swe-agent's <returncode> and
# <output> tags (<output_head>/<output_tail> around a long output it cut, after a <warning>),
# OpenHands' '[Command finished with exit code N]' footer and its interpreter and directory lines,
# SWE-agent's '(Open file: ...)' / '(Current directory: ...)' prompt. The exit code is the error
# signal; what the command printed is the message.
_EXIT_CODE = re.compile(
    r"<returncode>\s*(-?\d+)\s*</returncode>"
    r"|\[(?:Command finished|The command completed) with exit code (-?\d+)\.?\]"
    r"|^[ \t]*exit (?:code|status):?[ \t]*(-?\d+)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_WRAPPER_BLOCK = re.compile(r"<warning>.*?</warning>|<elided_chars>.*?</elided_chars>", re.S)
_WRAPPER_TAG = re.compile(r"</?(?:output|output_head|output_tail)>")
_WRAPPER_LINE = re.compile(
    r"^\s*(?:\[(?:Python Interpreter|Current working directory|Command timed out)[^\]\n]*\]"
    r"|\((?:Open file|Current directory)[^)\n]*\)|bash-\$)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
# An exception or error with its message: the informative part of a traceback or a test report.
_EXCEPTION = re.compile(r"\b[A-Z]\w*(?:Error|Exception)\b:\s*\S|^(?i:error|fatal)\b:\s*\S")


def unwrap(text: str | None) -> tuple[int | None, list[str]]:
    """(exit code the tool's wrapper reports, or None; the output's non-empty lines)."""
    if not text:
        return None, []
    codes = [next(g for g in m.groups() if g is not None) for m in _EXIT_CODE.finditer(text)]
    body = _EXIT_CODE.sub("\n", text)
    body = _WRAPPER_BLOCK.sub("\n", body)
    body = _WRAPPER_LINE.sub("", _WRAPPER_TAG.sub("\n", body))
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    return (int(codes[-1]) if codes else None), lines


def _telling_line(lines: list[str]) -> str | None:
    """The output's last exception with its message (from the exception's name on: the same
    error reads the same in a traceback and in a test report), else its last line that names an
    error."""
    for ln in reversed(lines):
        m = _EXCEPTION.search(ln)
        if m:
            return ln[m.start() :]
    return next((ln for ln in reversed(lines) if _ERROR_LINE.search(ln)), None)


def error_line(text: str | None) -> str:
    """The most telling line of an error result, without the tool's wrapper: its last exception,
    else its last line that names an error; for a command whose output names none, its exit code
    and last line of output."""
    code, lines = unwrap(text)
    line = _telling_line(lines)
    if line is not None:
        return line
    if code is not None:
        return f"exit code {code}" + (f": {lines[-1]}" if lines else ", no output")
    return lines[0] if lines else ""


def error_pattern(text: str | None, max_chars: int = 90) -> str:
    """An error message with its particulars replaced, so the same failure groups together.

    'Error: flight HAT030 not available on date 2024-05-13' -> 'Error: flight <id> not available
    on date <date>'; "Could not find [Foo]. Similar: [...]" -> 'Could not find [...]. Similar: [...]'.
    A command whose output names no error is known by its exit code: 'exit code 1, no output'.
    """
    code, lines = unwrap(text)
    if code is not None and _telling_line(lines) is None:
        return f"exit code {code}" + ("" if lines else ", no output")
    line = error_line(text)
    line = _LONE_VALUE.sub(r"\1: <value>", line)
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
