"""Shell-aware tool calls: the programs a call ran, each with a family.

Reads one tool call (its name and parsed JSON arguments); writes nothing. Pure Python, no I/O,
and it never raises: commands are cut to their first `MAX_COMMAND_CHARS` characters, unbalanced
quotes run to the end, unknown programs are family ``other``.

A shell command is split into one `Action` per program invocation, in the order they run
(a ``$( ... )`` substitution before the command that uses it). Chains (``&&``, ``||``, ``;``,
newlines, ``&``), pipes and ``( ... )`` subshells are split; ``bash -c '...'`` / ``sh -lc "..."``,
``$( ... )`` and backticks are descended into. Heredoc bodies are data, not commands. Leading
``FOO=1`` assignments and wrappers (sudo, time, timeout N, env, nohup, nice, stdbuf, xargs,
npx, ``uv/poetry/pipenv/conda run``) give way to the program they wrap. Programs are normalised:
basename of a path, python3.11 -> python, pip3 -> pip, py.test -> pytest, ``./x.py`` -> python.

Families (``path`` is the file the action is about, when there is one):

=========  =====================================================================================
family     what counts
=========  =====================================================================================
test       pytest / py.test / ``python -m pytest`` (program pytest), ``python -m unittest``
           (unittest), nosetests, tox, jest, mocha, ``python runtests.py``, ``python <test file>``
           (program python), npm/yarn/pnpm test, go test, cargo test, make test|check, mvn test,
           gradle test, django-admin / ``manage.py test``. path: the first test file or dir
           operand (``tests/a.py::test_b`` -> ``tests/a.py``).
script     ``python x.py``, ``python -c ...`` and ``python - <<EOF`` (path None), node x.js,
           ``bash x.sh``, ``./x.sh``, perl/ruby x; a script whose path is a test path is test.
search     grep, egrep, fgrep, rg, ag, ack, find, fd, locate, ``git grep``; SWE-agent find_file,
           search_dir, search_file. path: the search root or file operand.
view       cat, head, tail, less, more, nl, bat, wc, file, stat, xxd, ``sed`` without -i, awk
           without ``-i inplace``; SWE-agent open/goto/scroll. path: the file operand. Reading
           stdin (``grep x . | head``) is view with path None.
edit       ``sed -i``, ``perl -i``, ``awk -i inplace``, patch, ``git apply``,
           ``git checkout -- f``, ``git restore f``, ``echo/printf/cat ... >> f``, ``tee -a f``,
           rm, mv (path: the destination). A ``python -c`` that writes a file stays script.
create     ``cat > f``, ``cat <<EOF > f``, ``echo/printf ... > f``, ``tee f``, touch, mkdir,
           cp (path: the destination).
vcs        git with any other subcommand (subcommand: status, diff, log ...), hg, svn.
install    pip / ``python -m pip`` install|uninstall, conda/mamba, apt(-get), yum, dnf, apk,
           brew, npm i|install|ci, yarn add|install, pnpm, poetry, ``uv pip install``, uv add|sync,
           gem, cargo install, go get|install (package managers only for install-like
           subcommands: ``pip list`` or ``conda activate`` is other).
navigate   cd, pushd, popd, ls, ll, tree, pwd, dirs.
submit     ``echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`` / ``MINI_SWE_AGENT_FINAL_OUTPUT``
           (mini-swe-agent), submit.
other      everything else, kept so counts stay honest: echo/printf without a redirect, export,
           sleep, chmod, which, ``test``/``[``, and prose that is not a command ("No changes
           needed." -> program ``No``).
=========  =====================================================================================

An output redirect (``> f``) does not change a program's family except for echo, printf and
cat; redirects to /dev/null are ignored. Editor and file tools (str_replace_editor, Claude
Code's Read/Edit/Write/Grep/Glob/LS, SWE-agent's commands, generic read_file/write_file ...)
map to the same families through `editor_action`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FAMILIES = (
    "test",
    "script",
    "search",
    "view",
    "edit",
    "create",
    "vcs",
    "install",
    "navigate",
    "submit",
    "other",
)
MAX_COMMAND_CHARS = 20_000
MAX_TEXT_CHARS = 300
_MAX_DEPTH = 8  # nested bash -c / $( ) levels followed; deeper text is kept as words


@dataclass(frozen=True)
class Action:
    program: str
    family: str
    path: str | None
    subcommand: str | None
    text: str


# --- lexing: words and operators, quotes respected, heredoc bodies skipped ---------------------

_PLAIN = re.compile(r"[^\s'\"\\$`;&|<>()]+")
_DOUBLE_PLAIN = re.compile(r'[^"\\$`]+')
_OPERATOR = re.compile(r"(\d*)(&>>|&>|>>|>\||>&|<<<|<<-|<<|<&|<>|>|<)|&&|\|\||;;|\|&|[;|&()]")


@dataclass
class _Script:
    """Tokens over one source string; `removed` are the heredoc bodies cut from action texts."""

    source: str
    tokens: list[tuple[str, str, int, int, tuple[_Script, ...]]]
    removed: list[tuple[int, int]]


class _Lexer:
    """Tolerant shell lexer: never raises, every loop step consumes at least one character."""

    def __init__(self, source: str, depth: int):
        self.s = source
        self.n = len(source)
        self.depth = depth
        self.removed: list[tuple[int, int]] = []

    def script(self) -> _Script:
        return _Script(self.s, self.tokens(0, nested=False)[0], self.removed)

    def tokens(self, i: int, nested: bool) -> tuple[list, int]:
        s, n = self.s, self.n
        tokens: list = []
        heredocs: list[str] = []
        parens = 0
        while i < n:
            c = s[i]
            if c == "\n":
                tokens.append(("s", "\n", i, i + 1, ()))
                i = self._skip_heredocs(i + 1, heredocs)
                heredocs = []
            elif c in " \t\r\f\v":
                i += 1
            elif c == "\\" and s.startswith("\n", i + 1):
                i += 2
            elif c == "#":  # a comment only where a word would start
                end = s.find("\n", i)
                i = n if end < 0 else end
            elif c == ")" and nested and parens == 0:
                return tokens, i + 1
            elif s.startswith(("<(", ">("), i):
                end, subs = self._substitution(i + 2)
                tokens.append(("w", s[i:end], i, end, subs))
                i = end
            elif match := _OPERATOR.match(s, i):
                op = match.group(0)
                parens += (op == "(") - (op == ")")
                tokens.append(("r" if match.group(2) else "s", op, i, match.end(), ()))
                i = match.end()
            else:
                value, end, subs = self._word(i)
                if (
                    tokens
                    and tokens[-1][0] == "r"
                    and tokens[-1][1].lstrip("0123456789")
                    in (
                        "<<",
                        "<<-",
                    )
                ):
                    heredocs.append(value)
                tokens.append(("w", value, i, end, subs))
                i = end
        return tokens, n

    def _skip_heredocs(self, i: int, delimiters: list[str]) -> int:
        s, n = self.s, self.n
        for delimiter in delimiters:
            start = i
            while i < n:
                end = s.find("\n", i)
                line, i = (s[i:], n) if end < 0 else (s[i:end], end + 1)
                # strip(): agents indent the closing delimiter more often than bash allows
                if line.strip() == delimiter:
                    break
            self.removed.append((start, i))
        return i

    def _word(self, i: int) -> tuple[str, int, tuple[_Script, ...]]:
        s, n = self.s, self.n
        parts: list[str] = []
        subs: list[_Script] = []
        while i < n:
            if match := _PLAIN.match(s, i):
                parts.append(match.group(0))
                i = match.end()
                continue
            c = s[i]
            if c == "'":
                end = s.find("'", i + 1)
                end = n if end < 0 else end
                parts.append(s[i + 1 : end])
                i = end + 1
            elif c == '"':
                i = self._double_quoted(i + 1, parts, subs)
            elif c == "\\":
                parts.append(s[i + 1 : i + 2].replace("\n", ""))
                i += 2
            elif c in "$`":
                i = self._expansion(i, parts, subs)
            else:
                break
        return "".join(parts), min(i, n), tuple(subs)

    def _double_quoted(self, i: int, parts: list[str], subs: list[_Script]) -> int:
        s, n = self.s, self.n
        while i < n:
            if match := _DOUBLE_PLAIN.match(s, i):
                parts.append(match.group(0))
                i = match.end()
                continue
            c = s[i]
            if c == '"':
                return i + 1
            if c == "\\":
                following = s[i + 1 : i + 2]
                parts.append(following if following in '$`"\\' else c + following)
                i += 2
            else:
                i = self._expansion(i, parts, subs)
        return n

    def _expansion(self, i: int, parts: list[str], subs: list[_Script]) -> int:
        """`$( )`, backticks, `${ }`, `$(( ))`, `$'...'` or a lone `$`, kept as written."""
        s, n = self.s, self.n
        if s.startswith("$((", i):
            end = _matching_paren(s, i + 1)
        elif s.startswith("$(", i):
            end, found = self._substitution(i + 2)
            subs.extend(found)
        elif s.startswith("${", i):
            end = s.find("}", i + 2)
            end = n if end < 0 else end + 1
        elif s.startswith("$'", i):
            end = i + 2
            while end < n and s[end] != "'":
                end += 2 if s[end] == "\\" else 1
            end = min(end + 1, n)
        elif s[i] == "`":
            close = s.find("`", i + 1)
            end = n if close < 0 else close + 1
            if self.depth + 1 < _MAX_DEPTH:
                subs.append(_Lexer(s[i + 1 : close if close >= 0 else n], self.depth + 1).script())
        else:
            end = i + 1
        parts.append(s[i:end])
        return end

    def _substitution(self, i: int) -> tuple[int, tuple[_Script, ...]]:
        """The commands of `$( ... )` / `<( ... )` whose body starts at i; returns (end, scripts)."""
        if self.depth + 1 >= _MAX_DEPTH:
            return _matching_paren(self.s, i - 1), ()
        self.depth += 1
        tokens, end = self.tokens(i, nested=True)
        self.depth -= 1
        return end, (_Script(self.s, tokens, self.removed),)


def _matching_paren(s: str, i: int) -> int:
    """Index after the `)` closing the `(` at i (quotes not followed), or the end."""
    depth = 0
    for j in range(i, len(s)):
        depth += (s[j] == "(") - (s[j] == ")")
        if depth == 0:
            return j + 1
    return len(s)


# --- from tokens to actions ----------------------------------------------------------------------

_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}"})
_ENDINGS = frozenset({"fi", "done", "esac", "}"})
_HEADERS = frozenset({"for", "select", "case", "function"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_DEVICES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"})
_SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh"})
_INTERPRETERS = {"py": "python", "sh": "bash", "bash": "bash", "js": "node", "mjs": "node"}
_INTERPRETERS |= {"cjs": "node", "pl": "perl", "rb": "ruby"}


def split_command(command: str) -> list[Action]:
    """One `Action` per program the command runs, in order; [] for a blank or non-string."""
    if not isinstance(command, str) or not command.strip():
        return []
    try:
        return _split(command[:MAX_COMMAND_CHARS], 0)
    except Exception:  # a parser over arbitrary agent text must not stop the pipeline
        words = command.split(None, 1)
        return [Action(words[0][:MAX_TEXT_CHARS], "other", None, None, command[:MAX_TEXT_CHARS])]


def _split(command: str, depth: int) -> list[Action]:
    return _script_actions(_Lexer(command, depth).script(), depth)


def _script_actions(script: _Script, depth: int) -> list[Action]:
    actions: list[Action] = []
    segment: list = []
    for token in [*script.tokens, ("s", "", 0, 0, ())]:
        if token[0] != "s":
            segment.append(token)
        elif segment:
            actions.extend(_segment_actions(script, segment, depth))
            segment = []
    return actions


def _segment_actions(script: _Script, segment: list, depth: int) -> list[Action]:
    actions: list[Action] = []
    words: list[str] = []
    redirects: list[tuple[str, str]] = []
    operator = None
    while segment and segment[0][0] == "w" and segment[0][1] in _KEYWORDS:
        segment = segment[1:]  # `do`, `then`: the action's text starts at its program
    if not segment:
        return []
    for kind, value, _, _, subs in segment:
        for sub in subs:
            actions.extend(_script_actions(sub, depth + 1))
        if kind == "r":
            operator = value
        elif operator is not None:
            redirects.append((operator, value))
            operator = None
        else:
            words.append(value)
    text = _text(script, segment[0][2], segment[-1][3])
    return actions + _invocation(words, redirects, text, depth)


def _text(script: _Script, start: int, end: int) -> str:
    pieces, position = [], start
    for cut_start, cut_end in sorted(script.removed):
        if cut_start < end and cut_end > position:
            pieces.append(script.source[position:cut_start])
            position = cut_end
    pieces.append(script.source[position:end])
    return "".join(pieces).strip()[:MAX_TEXT_CHARS]


def _invocation(
    words: list[str], redirects: list[tuple[str, str]], text: str, depth: int
) -> list[Action]:
    if not words or words[0] in _HEADERS or words[0] in _ENDINGS:
        return []  # loop and case headers, `done`, `fi`: syntax, not programs
    words = _unwrap(words)
    if not words:
        return []  # assignments only
    head, args = words[0], words[1:]
    program = _program_name(head)
    if program in _SHELLS and (inner := _shell_string(args)) is not None:
        if depth + 1 < _MAX_DEPTH:
            return _split(inner[:MAX_COMMAND_CHARS], depth + 1)
        return [Action(program, "script", None, None, text)]
    extension = head.rsplit(".", 1)[-1] if "/" in head and "." in program else ""
    if extension in _INTERPRETERS:
        kind = _script_run(_INTERPRETERS[extension], head, args)
    elif handler := _HANDLERS.get(program):
        kind = handler(program, args, redirects)
    else:
        kind = (program, "other", None, None)
    return [Action(*kind, text)]


_WRAPPERS: dict[str, frozenset[str]] = {  # wrapper -> its options that take a value
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}),
    "time": frozenset(),
    "nohup": frozenset(),
    "command": frozenset(),
    "exec": frozenset(),
    "builtin": frozenset(),
    "unbuffer": frozenset(),
    "nice": frozenset({"-n"}),
    "ionice": frozenset({"-c", "-n"}),
    "env": frozenset({"-u", "-C", "-S"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "xargs": frozenset({"-I", "-n", "-P", "-d", "-L", "-s", "-E", "-a", "--max-args"}),
    "npx": frozenset({"-p", "--package"}),
}
_RUNNERS = frozenset({"uv", "poetry", "pipenv", "pdm", "hatch", "conda", "mamba", "micromamba"})
_RUNNER_OPTIONS = frozenset(
    {"-n", "--name", "-p", "--prefix", "--python", "--with", "--directory", "--project", "-e"}
)


def _unwrap(words: list[str]) -> list[str]:
    """The wrapped command of `sudo timeout 60 env X=1 python ...`; a bare wrapper stays."""
    for _ in range(_MAX_DEPTH):
        while words and _ASSIGNMENT.match(words[0]):
            words = words[1:]
        if not words:
            return words
        head = _program_name(words[0])
        if head in _WRAPPERS:
            rest = _skip_options(words[1:], _WRAPPERS[head])
            if head == "timeout":
                rest = rest[1:]
        elif head in _RUNNERS and words[1:2] == ["run"]:
            rest = _skip_options(words[2:], _RUNNER_OPTIONS)
        else:
            return words
        if not rest or all(_ASSIGNMENT.match(word) for word in rest):
            return words
        words = rest
    return words


def _skip_options(args: list[str], takes_value: frozenset[str] = frozenset()) -> list[str]:
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        if args[i] == "--":
            return args[i + 1 :]
        i += 2 if args[i] in takes_value else 1
    return args[i:]


def _operands(args: list[str], takes_value: frozenset[str] = frozenset()) -> list[str]:
    """The words that are not options nor option values; after `--` everything."""
    out, i = [], 0
    while i < len(args):
        word = args[i]
        if word == "--":
            return out + args[i + 1 :]
        if word.startswith("-") and word != "-":
            i += 1 + (word in takes_value)
        else:
            out.append(word)
            i += 1
    return out


def _first(items: list[str]) -> str | None:
    return items[0] if items else None


_VERSIONED = re.compile(r"(python|pip)[\d.]*")
_ALIASES = {"py.test": "pytest", "gradlew": "gradle", "mvnw": "mvn", "nodejs": "node"}


def _program_name(word: str) -> str:
    base = word.rstrip("/").rsplit("/", 1)[-1] or word
    if match := _VERSIONED.fullmatch(base):
        return match.group(1)
    return _ALIASES.get(base, base)


def _shell_string(args: list[str]) -> str | None:
    """The command string of `bash -c '...'` / `sh -lc "..."`, None when the shell has none."""
    i = 0
    while i < len(args):
        word = args[i]
        if word in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
        elif word.startswith("-") and not word.startswith("--") and "c" in word:
            return args[i + 1] if i + 1 < len(args) else ""
        elif word.startswith(("-", "+")):
            i += 1
        else:
            return None
    return None


def _stdout_file(redirects: list[tuple[str, str]]) -> tuple[str, bool] | None:
    """(file, appends) of the last stdout redirect to a real file."""
    for operator, target in reversed(redirects):
        bare = operator.lstrip("0123456789")
        descriptor = operator[: len(operator) - len(bare)]
        if bare in (">", ">|", ">>", "&>", "&>>") and descriptor in ("", "1"):
            if target not in _DEVICES:
                return target, bare.endswith(">>")
    return None


def _stdin_file(redirects: list[tuple[str, str]]) -> str | None:
    return next((t for op, t in redirects if op in ("<", "0<") and t not in _DEVICES), None)


# --- is_test_path, then the per-program rules ---------------------------------------------------

_TEST_DIRS = frozenset({"tests", "test", "testing", "__tests__", "spec"})
_TEST_FILE = re.compile(
    r"test_.*\.py|.*_test\.py|tests\.py|conftest\.py|.*_test\.go"
    r"|.*\.test\.(?:js|ts|jsx|tsx)|.*\.spec\.(?:js|ts|jsx|tsx)|.*Test\.java"
)


def is_test_path(path: str | None) -> bool:
    """Whether a path names tests: a tests/test/testing/__tests__/spec segment or a test file."""
    if not isinstance(path, str) or not path:
        return False
    segments = [part for part in path.split("::", 1)[0].replace("\\", "/").split("/") if part]
    if not segments:
        return False
    if any(part.lower() in _TEST_DIRS for part in segments):
        return True
    return _TEST_FILE.fullmatch(segments[-1]) is not None


Kind = tuple[str, str, str | None, str | None]  # program, family, path, subcommand
Handler = Callable[[str, list[str], list[tuple[str, str]]], Kind]
_PYTEST_VALUES = frozenset(
    {"-k", "-m", "-p", "-c", "-o", "-n", "-W", "--tb", "--deselect", "--ignore", "--rootdir"}
    | {"--maxfail", "--durations", "--junitxml", "--log-level", "--timeout", "--basetemp"}
)


def _test_target(operands: list[str]) -> str | None:
    first = _first(operands)
    return first.split("::", 1)[0] if first else None


def _path_like(operands: list[str]) -> str | None:
    """The first operand that is a file or dir, not a dotted test label like `app.tests.TestX`."""
    return next((op for op in operands if "/" in op or op.endswith(".py")), None)


def _script_run(interpreter: str, script: str, rest: list[str]) -> Kind:
    name = script.rsplit("/", 1)[-1]
    if name == "manage.py" and rest[:1] == ["test"]:
        return (interpreter, "test", _path_like(_operands(rest[1:])), "test")
    if name == "setup.py" and rest[:1] in (["install"], ["develop"], ["test"]):
        return (interpreter, "test" if rest[0] == "test" else "install", None, rest[0])
    if name.startswith("runtests") or is_test_path(script):
        return (interpreter, "test", script, None)
    return (interpreter, "script", script, None)


def _python(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    i = 0
    while i < len(args):
        word = args[i]
        if word.startswith("-m"):
            module = word[2:] or (args[i + 1] if i + 1 < len(args) else "")
            rest = args[i + 1 :] if word[2:] else args[i + 2 :]
            handler = _PYTHON_MODULES.get(_program_name(module))
            if handler:
                return handler(_program_name(module), rest, redirects)
            return ("python", "script", None, None)
        if word.startswith(("-W", "-X")):
            i += 1 if len(word) > 2 else 2
        elif word == "-" or (word.startswith("-") and not word.startswith("--") and "c" in word):
            return ("python", "script", None, None)  # -c, -uc: inline code; -: stdin
        elif not word.startswith("-"):
            return _script_run("python", word, args[i + 1 :])
        else:
            i += 1
    return ("python", "script", _stdin_file(redirects), None)


def _interpreter(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    """node, bash x.sh, ruby ...: an inline program (-e) has no path."""
    inline = ("-s",) if program in _SHELLS else ("-e", "-p", "--eval", "--print")
    if any(word in inline for word in args):
        return (program, "script", None, None)
    operands = _operands(args, frozenset({"-r", "--require", "-o", "-O", "-I"}))
    if operands:
        return _script_run(program, operands[0], operands[1:])
    return (program, "script", _stdin_file(redirects), None)


def _perl(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    inplace, inline, operands, i = False, False, [], 0
    while i < len(args):
        word = args[i]
        if word.startswith("-") and len(word) > 1 and not word.startswith("--"):
            inplace = inplace or "i" in word
            if word.endswith(("e", "E")):
                inline = True
                i += 1  # the next word is the program text
        else:
            operands.append(word)
        i += 1
    if inplace:
        return (program, "edit", _first(operands), None)
    if inline:
        return (program, "script", None, None)
    if operands:
        return _script_run(program, operands[0], operands[1:])
    return (program, "script", _stdin_file(redirects), None)


def _test_runner(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    return (program, "test", _test_target(_operands(args, _PYTEST_VALUES)), None)


def _unittest(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    return (program, "test", _path_like(_operands(args, frozenset({"-s", "-p", "-t", "-k"}))), None)


def _django(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    operands = _operands(args, frozenset({"--settings", "--pythonpath", "-v", "--parallel"}))
    if operands[:1] == ["test"]:
        return (program, "test", _path_like(operands[1:]), "test")
    return (program, "other", None, _first(operands))


_INSTALL_SUBCOMMANDS = frozenset(
    {"install", "i", "ci", "add", "uninstall", "remove", "update", "upgrade", "sync", "create"}
)
_JS_MANAGERS = frozenset({"npm", "yarn", "pnpm", "bun"})


def _package_manager(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    # options before the subcommand rarely take values (`apt-get -y install`, `pip -q install`)
    words = [word for word in args if not word.startswith("-")]
    if program == "uv" and words[:1] == ["pip"]:
        words = words[1:]
    sub = _first(words)
    if program in _JS_MANAGERS:
        if sub in ("test", "t", "tst") or (
            sub == "run" and words[1:2] and words[1].startswith("test")
        ):
            return (program, "test", None, sub)
        if program == "yarn" and sub is None:
            return (program, "install", None, None)
    family = "install" if sub in _INSTALL_SUBCOMMANDS else "other"
    return (program, family, None, sub)


_GO_VALUES = frozenset({"-run", "-timeout", "-tags", "-p", "-count", "-bench", "-parallel"})


def _go(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    operands = _operands(args, _GO_VALUES)
    sub, rest = _first(operands), operands[1:]
    if sub == "test":
        return (program, "test", _first(rest), sub)
    if sub in ("get", "install"):
        return (program, "install", None, sub)
    if sub == "run":
        return (program, "script", _first(rest), sub)
    return (program, "other", None, sub)


def _cargo(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    sub = _first(_operands(args, frozenset({"-p", "--package", "--manifest-path"})))
    family = {"test": "test", "install": "install", "add": "install", "run": "script"}
    return (program, family.get(sub or "", "other"), None, sub)


_TARGET_VALUES = frozenset({"-C", "-f", "-I", "-W", "-pl", "-P", "-T", "-rf", "--file"})


def _build_targets(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    """make / mvn / gradle: tests when a target is test, check, verify, test-* or x:test."""
    targets = [
        word
        for word in _operands(args, _TARGET_VALUES | {"--directory", "--projects"})
        if not _ASSIGNMENT.match(word) and not word.isdigit()
    ]
    is_test = any(
        t in ("check", "verify") or t.startswith("test") or t.endswith(":test") for t in targets
    )
    return (program, "test" if is_test else "other", None, _first(targets))


_GIT_GLOBALS = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace"})
_FILE_LIKE = re.compile(r".*\.[A-Za-z]\w{0,7}|.*/")


def _git(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    rest = _skip_options(args, _GIT_GLOBALS)
    sub, rest = _first(rest), rest[1:]
    after_dashes = rest[rest.index("--") + 1 :] if "--" in rest else []
    if sub == "grep":
        return (program, "search", _grep(program, rest, redirects)[2], sub)
    operands = _operands(rest, frozenset({"-m", "-e", "-f", "-b", "-B", "-U", "--format", "-n"}))
    if sub == "apply":
        return (program, "edit", _first(operands), sub)
    if (sub == "checkout" and after_dashes) or sub == "restore":
        return (program, "edit", _first(after_dashes or operands), sub)
    path = _first(after_dashes) or next((w for w in operands if _FILE_LIKE.fullmatch(w)), None)
    return (program, "vcs", path, sub)


def _vcs(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    return (program, "vcs", None, _first(_operands(args)))


_GREP_VALUES = frozenset(
    {"-e", "-f", "-A", "-B", "-C", "-m", "-d", "-D", "--include", "--exclude", "--exclude-dir"}
    | {"--regexp", "--file", "--max-count", "--context", "--after-context", "--before-context"}
)
_SEARCH_VALUES = {
    "rg": frozenset({"-e", "-f", "-g", "--glob", "-t", "--type", "-T", "--type-not", "-A", "-B"})
    | {"-C", "-m", "-j", "-M", "--iglob", "-r", "--replace", "--max-depth"},
    "ag": frozenset({"-G", "--ignore", "-A", "-B", "-C", "-m", "--depth"}),
}


def _grep(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    operands = _operands(args, _SEARCH_VALUES.get(program, _GREP_VALUES))
    explicit = any(
        word in ("-e", "-f", "--regexp", "--file", "--files") or word.startswith("--regexp=")
        for word in args
    )
    return (program, "search", _first(operands if explicit else operands[1:]), None)


def _find(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    for word in args:
        if word in ("-L", "-H", "-P") or word.startswith("-O"):
            continue
        if word.startswith(("-", "(", "!", ")")):
            break
        return (program, "search", word, None)
    return (program, "search", None, None)


def _fd(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    values = frozenset({"-e", "-t", "-E", "-d", "-x", "-X", "--type", "--extension", "--exclude"})
    operands = _operands(args, values)
    return (program, "search", _first(operands[1:]), None)


def _sed(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    inplace, inline, operands, i = False, False, [], 0
    while i < len(args):
        word = args[i]
        if word == "--":
            operands += args[i + 1 :]
            break
        if word in ("-e", "--expression", "-f", "--file", "-l"):
            inline = inline or word != "-l"
            i += 1
        elif word.startswith("--in-place"):
            inplace = True
        elif word.startswith("-") and len(word) > 1 and not word.startswith("--"):
            if "i" in word:  # -i, -i.bak, -Ei; `-ie` is -i with suffix "e", still in place
                inplace = True
            elif word.endswith(("e", "f")):
                inline = True
                i += 1
        elif not word.startswith("--"):
            operands.append(word)
        i += 1
    path = _first(operands if inline else operands[1:])
    return (program, "edit" if inplace else "view", path, None)


def _awk(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    joined = " ".join(args[:6])
    inplace = "-i inplace" in joined or "-iinplace" in joined or "--include=inplace" in joined
    operands = _operands(args, frozenset({"-F", "-v", "-f", "-i", "--include"}))
    has_file_program = "-f" in args
    path = _first(operands if has_file_program else operands[1:])
    return (program, "edit" if inplace else "view", path, None)


def _writer(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    """echo, printf, cat: a redirect to a file creates it (`>`) or edits it (`>>`)."""
    if program in ("echo", "printf") and any(marker in word for word in args for marker in _SUBMIT):
        return (program, "submit", None, None)
    target = _stdout_file(redirects)
    if target:
        return (program, "edit" if target[1] else "create", target[0], None)
    if program == "cat":
        return (program, "view", _first(_operands(args)), None)
    return (program, "other", None, None)


_SUBMIT = ("COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT", "MINI_SWE_AGENT_FINAL_OUTPUT")


def _tee(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    files = [word for word in _operands(args) if word not in _DEVICES]
    if not files:
        return (program, "other", None, None)
    appends = any(word in ("-a", "--append") for word in args)
    return (program, "edit" if appends else "create", files[0], None)


def _patch(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    values = frozenset({"-p", "-i", "-d", "-o", "-r", "-B", "-F", "-z", "-D", "--input"})
    operands = _operands(args, values)
    patch_file = next(
        (args[i + 1] for i, w in enumerate(args[:-1]) if w in ("-i", "--input")), None
    )
    return (program, "edit", _first(operands) or patch_file or _stdin_file(redirects), None)


def _destination(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    """cp creates, mv edits: the file that has the content afterwards, the last operand."""
    operands = _operands(args, frozenset({"-t", "--target-directory", "-S", "--suffix"}))
    return (
        program,
        "create" if program == "cp" else "edit",
        operands[-1] if operands else None,
        None,
    )


def _first_operand(family: str, takes_value: frozenset[str] = frozenset()) -> Handler:
    def handler(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
        return (program, family, _first(_operands(args, takes_value)), None)

    return handler


def _no_path(family: str) -> Handler:
    def handler(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
        return (program, family, None, None)

    return handler


# --- editor and file tools ----------------------------------------------------------------------

_FILE_EDITORS = frozenset(
    {"str_replace_editor", "str_replace_based_edit_tool", "text_editor", "edit_tool", "file_editor"}
)
_EDITOR_SUBCOMMANDS = {
    "view": "view",
    "view_range": "view",
    "create": "create",
    "str_replace": "edit",
    "insert": "edit",
    "undo_edit": "edit",
}
_SWE_AGENT_COMMANDS = {
    "open": "view",
    "goto": "view",
    "scroll_up": "view",
    "scroll_down": "view",
    "find_file": "search",
    "search_dir": "search",
    "search_file": "search",
    "edit": "edit",
    "create": "create",
    "submit": "submit",
}


def _editor_words(program: str, args: list[str], redirects: list[tuple[str, str]]) -> Kind:
    """str_replace_editor <subcommand> <path> and SWE-agent's commands, as words."""
    key = program.lower()
    if key in _FILE_EDITORS:
        sub = _first(args)
        family = _EDITOR_SUBCOMMANDS.get(sub or "", "other")
        return (program, family, args[1] if len(args) > 1 else None, sub)
    path = None
    if key in ("open", "create"):
        path = _first(args)
    elif key in ("find_file", "search_dir", "search_file"):
        path = args[1] if len(args) > 1 else None
    return (program, _SWE_AGENT_COMMANDS[key], path, None)


_VIEW_VALUES = {
    "head": frozenset({"-n", "-c", "--lines", "--bytes"}),
    "tail": frozenset({"-n", "-c", "--lines", "--bytes"}),
    "nl": frozenset({"-b", "-v", "-w", "-s", "-i"}),
    "bat": frozenset({"-l", "-r", "-H", "--language", "--line-range", "--style"}),
    "stat": frozenset({"-c", "--format", "--printf"}),
}
_TEST_RUNNERS = ("pytest", "nosetests", "nose2", "jest", "mocha", "vitest", "rspec", "phpunit")
_MANAGERS = ("pip", "conda", "mamba", "micromamba", "apt", "apt-get", "yum", "dnf", "apk", "brew")
_HANDLERS: dict[str, Handler] = {
    **{name: _test_runner for name in _TEST_RUNNERS},
    **{name: _no_path("test") for name in ("tox", "nox")},
    **{name: _package_manager for name in (*_MANAGERS, *_JS_MANAGERS, "poetry", "uv", "gem")},
    **{name: _build_targets for name in ("make", "mvn", "gradle")},
    **{name: _interpreter for name in (*_SHELLS, "node", "ruby")},
    **{name: _grep for name in ("grep", "egrep", "fgrep", "rg", "ag", "ack")},
    **{
        name: _first_operand("view", _VIEW_VALUES.get(name, frozenset()))
        for name in (
            "head",
            "tail",
            "less",
            "more",
            "nl",
            "bat",
            "wc",
            "file",
            "stat",
            "xxd",
            "view",
        )
    },
    **{name: _writer for name in ("echo", "printf", "cat")},
    **{name: _editor_words for name in (*_FILE_EDITORS, *_SWE_AGENT_COMMANDS)},
    **{name: _first_operand("edit") for name in ("rm", "rmdir", "unlink")},
    **{name: _first_operand("navigate") for name in ("cd", "pushd", "ls", "ll", "dir")},
    **{name: _no_path("navigate") for name in ("pwd", "dirs", "popd")},
    **{name: _vcs for name in ("hg", "svn")},
    "tree": _first_operand("navigate", frozenset({"-L", "-I", "-P"})),
    "touch": _first_operand("create"),
    "mkdir": _first_operand("create", frozenset({"-m", "--mode"})),
    "cp": _destination,
    "mv": _destination,
    "tee": _tee,
    "python": _python,
    "perl": _perl,
    "django-admin": _django,
    "go": _go,
    "cargo": _cargo,
    "git": _git,
    "find": _find,
    "fd": _fd,
    "locate": _no_path("search"),
    "sed": _sed,
    "awk": _awk,
    "gawk": _awk,
    "patch": _patch,
    "apply_patch": _no_path("edit"),
}
_PYTHON_MODULES: dict[str, Handler] = {
    "pytest": _test_runner,
    "unittest": _unittest,
    "pip": _package_manager,
    "tox": _no_path("test"),
    "nose": _test_runner,
    "nose2": _test_runner,
    "django": _django,
}


_TOOL_FAMILIES = {  # lower-cased names of editor and file tools
    **{name: "edit" for name in _FILE_EDITORS},
    **_SWE_AGENT_COMMANDS,
    "read": "view",
    "notebookread": "view",
    "multiedit": "edit",
    "notebookedit": "edit",
    "write": "create",
    "grep": "search",
    "glob": "search",
    "ls": "navigate",
    "read_file": "view",
    "view_file": "view",
    "open_file": "view",
    "write_file": "create",
    "create_file": "create",
    "edit_file": "edit",
    "apply_patch": "edit",
    "replace_in_file": "edit",
    "list_dir": "navigate",
    "list_files": "navigate",
    "search_files": "search",
    "find_files": "search",
    "codebase_search": "search",
}
_PATH_KEYS = ("file_path", "notebook_path", "path", "filename", "file", "target_file")
_PATCHED_FILE = re.compile(r"^\*\*\* (?:Update|Add|Delete) File: (.+)$", re.M)


def editor_action(tool_name: str, args: Any) -> Action | None:
    """The action of an editor or file tool call (str_replace_editor, Read, open ...), else None."""
    if not isinstance(tool_name, str):
        return None
    name = tool_name.strip()
    key = name.lower()
    family = _TOOL_FAMILIES.get(key)
    if family is None:
        return None
    fields = args if isinstance(args, dict) else {}
    path = next((v for k in _PATH_KEYS if isinstance(v := fields.get(k), str) and v), None)
    command = fields.get("command")
    line = args if isinstance(args, str) else command if isinstance(command, str) else None
    sub = None
    if key in _FILE_EDITORS and line in _EDITOR_SUBCOMMANDS:
        sub, family, line = line, _EDITOR_SUBCOMMANDS[line], None
    elif key in _FILE_EDITORS or key in _SWE_AGENT_COMMANDS:
        words = _line_words(line or "")
        if words and words[0].lower() == key:
            words = words[1:]
        _, family, word_path, sub = _editor_words(name, words, [])
        path = path or word_path
    elif key == "glob" and path is None:
        path = fields.get("pattern") if isinstance(fields.get("pattern"), str) else None
    elif key == "apply_patch" and path is None:
        patch = args if isinstance(args, str) else fields.get("input") or fields.get("patch")
        found = _PATCHED_FILE.search(patch[:MAX_COMMAND_CHARS]) if isinstance(patch, str) else None
        path = found.group(1).strip() if found else None
    if line and key not in ("apply_patch",):
        text = line.strip().split("\n", 1)[0]
    else:
        text = " ".join(part for part in (name, sub, path) if part)
    return Action(name, family, path, sub, text[:MAX_TEXT_CHARS])


def _line_words(line: str) -> list[str]:
    """Words of the first line of an action line; tolerant of quotes opened on it."""
    first = line.strip()[:MAX_COMMAND_CHARS].split("\n", 1)[0]
    try:
        return shlex.split(first)
    except ValueError:
        return first.split()


# --- shell tools --------------------------------------------------------------------------------

_SHELL_TOOLS = frozenset(
    {"bash", "sh", "shell", "zsh", "execute_bash", "run_command", "run_shell_command"}
    | {"execute_command", "terminal", "run_terminal_cmd", "shell_exec", "exec_command", "cmd"}
    | {"container.exec"}
)
_SHELL_NAME_PARTS = ("bash", "shell", "terminal", "command")
_COMMAND_KEYS = ("command", "cmd", "script", "input")  # not `code`: that is usually Python


def shell_command(tool_name: str, args: Any) -> str | None:
    """The command string if this call runs a shell command, else None."""
    if not isinstance(tool_name, str):
        return None
    key = tool_name.strip().lower()
    if key not in _SHELL_TOOLS and not any(part in key for part in _SHELL_NAME_PARTS):
        return None
    command = args if isinstance(args, str) else None
    if isinstance(args, dict):
        command = next(
            (found for k in _COMMAND_KEYS if (found := _command_string(args.get(k))) is not None),
            None,
        )
    return command if command and command.strip() else None


def _command_string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(word, str) for word in value):
        # ["bash", "-lc", "<script>"] as Codex records it: the script is the command
        if len(value) == 3 and _program_name(value[0]) in _SHELLS and value[1] in ("-c", "-lc"):
            return value[2]
        return shlex.join(value)
    return None


def call_actions(tool_name: str, args: Any) -> list[Action]:
    """Every action of one tool call: a shell command's programs, an editor tool's one action."""
    editor = editor_action(tool_name, args)
    if editor is not None:
        return [editor]
    command = shell_command(tool_name, args)
    return split_command(command) if command is not None else []
