"""Shell-aware tool calls: the programs a command runs, their families and files."""

from __future__ import annotations

import random
import shlex

import pytest

from pipeline.analyse.shell import (
    FAMILIES,
    MAX_TEXT_CHARS,
    Action,
    _split,
    call_actions,
    editor_action,
    is_test_path,
    shell_command,
    split_command,
)

REPRO_HEREDOC = """cat <<'EOF' > reproduce.py
from sympy import symbols, Mod
x = symbols('x')   # don't && rm -rf / ; this is data
print(Mod(x, 2))
EOF
python reproduce.py"""

HEREDOC_THEN_CHAIN = """cat > /testbed/repro.py << "EOF" && python /testbed/repro.py
import django
print(django.VERSION)
EOF"""

COMMIT = """git add -A && git commit -m "$(cat <<'EOF'
Fix the parser (don't drop the last token)
EOF
)" && git log --oneline -1"""

PYTHON_C = """python -c "
from astropy.io import fits
hdu = fits.PrimaryHDU()
print(hdu.header['SIMPLE'])
" 2>&1 | head -n 40"""

COMMENTED = """# Look at how the field is deconstructed
grep -n "def deconstruct" django/db/models/fields/__init__.py
# and the tests that cover it
ls tests/field_deconstruction/"""

# (command, expected [(program, family, path)]); one row a line reads as a table
# fmt: off
COMMANDS = [
    # navigation, chains, pipes
    ("cd /testbed && ls -la", [("cd", "navigate", "/testbed"), ("ls", "navigate", None)]),
    ("ls -la /testbed/src/", [("ls", "navigate", "/testbed/src/")]),
    ("pwd; tree -L 2 src", [("pwd", "navigate", None), ("tree", "navigate", "src")]),
    (
        "cd /testbed && python -m pytest -xvs tests/a/test_b.py::test_c 2>&1 | tail -30",
        [("cd", "navigate", "/testbed"), ("pytest", "test", "tests/a/test_b.py"), ("tail", "view", None)],
    ),
    # a program reading a pipe has no file: view with path None
    ("grep -rn foo . | head -20", [("grep", "search", "."), ("head", "view", None)]),
    # tests
    ("python -m pytest tests/test_x.py -q", [("pytest", "test", "tests/test_x.py")]),
    ("pytest -q", [("pytest", "test", None)]),
    ("py.test -k 'not slow' testing/", [("pytest", "test", "testing/")]),
    ("python3 -m pytest -x -q --tb=short sklearn/tests/test_base.py", [("pytest", "test", "sklearn/tests/test_base.py")]),
    ("cd /testbed && PYTHONPATH=. pytest -p no:cacheprovider tests", [("cd", "navigate", "/testbed"), ("pytest", "test", "tests")]),
    ("python -m unittest tests.test_models -v", [("unittest", "test", None)]),
    ("python -m unittest tests/test_models.py", [("unittest", "test", "tests/test_models.py")]),
    ("./tests/runtests.py model_fields.test_charfield --verbosity 2", [("python", "test", "./tests/runtests.py")]),
    ("cd tests && python runtests.py queries", [("cd", "navigate", "tests"), ("python", "test", "runtests.py")]),
    ("python tests/test_issue.py", [("python", "test", "tests/test_issue.py")]),
    ("python manage.py test app/tests", [("python", "test", "app/tests")]),
    ("tox -e py39", [("tox", "test", None)]),
    ("npm test -- --watchAll=false", [("npm", "test", None)]),
    ("yarn test", [("yarn", "test", None)]),
    ("go test ./pkg/parser/...", [("go", "test", "./pkg/parser/...")]),
    ("cargo test --lib", [("cargo", "test", None)]),
    ("make test", [("make", "test", None)]),
    ("mvn -q test -Dtest=FooTest", [("mvn", "test", None)]),
    ("./gradlew test", [("gradle", "test", None)]),
    ("timeout 300 python -m pytest tests/ -x", [("pytest", "test", "tests/")]),
    ('bash -lc "pytest -q"', [("pytest", "test", None)]),
    ("sh -c 'cd /repo && python -m pytest tests/test_api.py'", [("cd", "navigate", "/repo"), ("pytest", "test", "tests/test_api.py")]),
    # scripts and heredocs
    ("python reproduce_issue.py", [("python", "script", "reproduce_issue.py")]),
    ("python3.11 /tmp/check.py --verbose", [("python", "script", "/tmp/check.py")]),
    ("/usr/bin/python3 -u debug.py", [("python", "script", "debug.py")]),
    (REPRO_HEREDOC, [("cat", "create", "reproduce.py"), ("python", "script", "reproduce.py")]),
    (HEREDOC_THEN_CHAIN, [("cat", "create", "/testbed/repro.py"), ("python", "script", "/testbed/repro.py")]),
    ("python - <<'EOF'\nimport sys\nprint(sys.version)\nEOF", [("python", "script", None)]),
    ("python3 <<EOF\nprint(1)\nEOF", [("python", "script", None)]),
    (PYTHON_C, [("python", "script", None), ("head", "view", None)]),
    ("python -uc 'import sys; print(sys.path)'", [("python", "script", None)]),
    ("python -W ignore -X dev tests/test_io.py", [("python", "test", "tests/test_io.py")]),
    ("node scripts/build.js", [("node", "script", "scripts/build.js")]),
    ("bash run.sh", [("bash", "script", "run.sh")]),
    ("bash -ex scripts/ci.sh && node -e 'console.log(1)'", [("bash", "script", "scripts/ci.sh"), ("node", "script", None)]),
    ("chmod +x run.sh && ./run.sh", [("chmod", "other", None), ("bash", "script", "./run.sh")]),
    # search
    ("grep -rn 'def _eval_is' sympy/core/", [("grep", "search", "sympy/core/")]),
    ("grep -n --include='*.py' -e separability src/", [("grep", "search", "src/")]),
    ("rg -n 'class Foo' -g '*.py'", [("rg", "search", None)]),
    ("find /testbed -name '*.py' -path '*migrations*' | head -5", [("find", "search", "/testbed"), ("head", "view", None)]),
    ("find . -type f -name '*.py' | xargs grep -l 'deprecated'", [("find", "search", "."), ("grep", "search", None)]),
    ("git grep -n 'quantity_input' -- astropy/units", [("git", "search", "astropy/units")]),
    (COMMENTED, [("grep", "search", "django/db/models/fields/__init__.py"), ("ls", "navigate", "tests/field_deconstruction/")]),
    # view
    ("cat setup.py", [("cat", "view", "setup.py")]),
    ("sed -n '10,40p' pkg/mod.py", [("sed", "view", "pkg/mod.py")]),
    ("nl -ba sympy/core/mod.py | sed -n '20,60p'", [("nl", "view", "sympy/core/mod.py"), ("sed", "view", None)]),
    ("head -n 50 requests/models.py", [("head", "view", "requests/models.py")]),
    ("awk 'NR>=100 && NR<=120' src/app.py", [("awk", "view", "src/app.py")]),
    ("wc -l src/*.py", [("wc", "view", "src/*.py")]),
    # edit and create
    ("sed -i 's/a/b/' pkg/mod.py", [("sed", "edit", "pkg/mod.py")]),
    ("sed -i.bak -e 's/old/new/g' lib/util.py && rm lib/util.py.bak", [("sed", "edit", "lib/util.py"), ("rm", "edit", "lib/util.py.bak")]),
    ("perl -pi -e 's/foo/bar/' src/a.c", [("perl", "edit", "src/a.c")]),
    ("patch -p1 < /tmp/fix.patch", [("patch", "edit", "/tmp/fix.patch")]),
    ("git apply fix.diff && git diff --stat", [("git", "edit", "fix.diff"), ("git", "vcs", None)]),
    ("git checkout -- django/db/models/query.py", [("git", "edit", "django/db/models/query.py")]),
    ("echo 'import os' >> conftest.py", [("echo", "edit", "conftest.py")]),
    ("echo 'print(1)' > t.py && python t.py", [("echo", "create", "t.py"), ("python", "script", "t.py")]),
    ("printf 'a\\nb\\n' > data.txt", [("printf", "create", "data.txt")]),
    ("cat > test_fix.py << 'EOF'\nimport pytest\nEOF", [("cat", "create", "test_fix.py")]),
    ("cat README.md > /dev/null", [("cat", "view", "README.md")]),
    ("cat <<'EOF' | tee -a notes.md\nmore\nEOF", [("cat", "view", None), ("tee", "edit", "notes.md")]),
    ("mkdir -p tests/regression && touch tests/regression/__init__.py", [("mkdir", "create", "tests/regression"), ("touch", "create", "tests/regression/__init__.py")]),
    ("cp setup.cfg setup.cfg.orig", [("cp", "create", "setup.cfg.orig")]),
    ("mv new_impl.py src/impl.py", [("mv", "edit", "src/impl.py")]),
    # version control
    ("git diff", [("git", "vcs", None)]),
    ("git status && git diff", [("git", "vcs", None), ("git", "vcs", None)]),
    ("git --no-pager log --oneline -5", [("git", "vcs", None)]),
    ("git diff src/models.py > /tmp/changes.patch", [("git", "vcs", "src/models.py")]),
    ("git stash && python -m pytest -q; git stash pop", [("git", "vcs", None), ("pytest", "test", None), ("git", "vcs", None)]),
    (COMMIT, [("git", "vcs", None), ("cat", "view", None), ("git", "vcs", None), ("git", "vcs", None)]),
    # install
    ("pip install -e .", [("pip", "install", None)]),
    ("pip3 install -q pytest==7.4.0 && python -m pytest -q", [("pip", "install", None), ("pytest", "test", None)]),
    ("python -m pip install -r requirements.txt", [("pip", "install", None)]),
    ("sudo apt-get install -y libxml2-dev", [("apt-get", "install", None)]),
    ("conda install -y numpy", [("conda", "install", None)]),
    ("uv pip install requests", [("uv", "install", None)]),
    ("npm ci && npm run build", [("npm", "install", None), ("npm", "other", None)]),
    ("pip list | grep -i django", [("pip", "other", None), ("grep", "search", None)]),
    # wrappers and runners
    ("env DJANGO_SETTINGS_MODULE=test_sqlite timeout 120 python tests/runtests.py auth", [("python", "test", "tests/runtests.py")]),
    ("uv run pytest tests/unit", [("pytest", "test", "tests/unit")]),
    ("poetry run python scripts/check.py", [("python", "script", "scripts/check.py")]),
    ("nohup python server.py > server.log 2>&1 &", [("python", "script", "server.py")]),
    # submission, control flow, substitutions
    (
        "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git add -A && git diff --cached",
        [("echo", "submit", None), ("git", "vcs", None), ("git", "vcs", None)],
    ),
    ("echo MINI_SWE_AGENT_FINAL_OUTPUT", [("echo", "submit", None)]),
    ("submit", [("submit", "submit", None)]),
    ("for f in tests/test_*.py; do python -m pytest -q $f; done", [("pytest", "test", "$f")]),
    ("if [ -f setup.py ]; then cat setup.py; fi", [("[", "other", None), ("cat", "view", "setup.py")]),
    ("cd $(git rev-parse --show-toplevel) && ls", [("git", "vcs", None), ("cd", "navigate", "$(git rev-parse --show-toplevel)"), ("ls", "navigate", None)]),
    ("(cd docs && make html)", [("cd", "navigate", "docs"), ("make", "other", None)]),
    ("export PYTHONPATH=/testbed; sleep 1; which python", [("export", "other", None), ("sleep", "other", None), ("which", "other", None)]),
    ("echo done", [("echo", "other", None)]),
    # SWE-agent commands run in its shell
    ("str_replace_editor view /testbed/src/x.py --view_range 1 40", [("str_replace_editor", "view", "/testbed/src/x.py")]),
    ("open src/flask/app.py 120", [("open", "view", "src/flask/app.py")]),
    ("search_dir 'def url_for' src", [("search_dir", "search", "src")]),
    # not commands, or broken ones
    ("No changes needed, the fix is complete.", [("No", "other", None)]),
    ("I don't think anything else needs to change", [("I", "other", None)]),
    ("grep -n 'unterminated src/a.py", [("grep", "search", None)]),
    ('echo "unbalanced && git diff', [("echo", "other", None)]),
    ("", []),
    ("   \n  ", []),
    ("# only a comment", []),
]
# fmt: on


@pytest.mark.parametrize("command,expected", COMMANDS, ids=[c[:50] for c, _ in COMMANDS])
def test_split_command(command, expected):
    actions = split_command(command)
    assert [(a.program, a.family, a.path) for a in actions] == expected
    assert all(a.family in FAMILIES and len(a.text) <= MAX_TEXT_CHARS for a in actions)


@pytest.mark.parametrize(
    "command,subcommands",
    [
        ("git status && git diff", ["status", "diff"]),
        ("git -C /testbed --no-pager diff HEAD~1", ["diff"]),
        ("git grep -n foo", ["grep"]),
        ("pip install -e . && pip list", ["install", "list"]),
        ("uv pip install requests", ["install"]),
        ("npm run test:unit", ["run"]),
        ("python manage.py test auth", ["test"]),
        ("make -j4 check", ["check"]),
        ("python -m pytest -q", [None]),
        ("str_replace_editor str_replace /testbed/a.py --old_str x --new_str y", ["str_replace"]),
    ],
)
def test_subcommands(command, subcommands):
    assert [a.subcommand for a in split_command(command)] == subcommands


def test_npm_test_script_counts_as_test():
    assert [(a.family, a.subcommand) for a in split_command("npm run test:unit")] == [
        ("test", "run")
    ]


def test_text_is_each_segment_as_written_without_heredoc_bodies():
    assert [a.text for a in split_command(REPRO_HEREDOC)] == [
        "cat <<'EOF' > reproduce.py",
        "python reproduce.py",
    ]
    assert [a.text for a in split_command(HEREDOC_THEN_CHAIN)] == [
        'cat > /testbed/repro.py << "EOF"',
        "python /testbed/repro.py",
    ]
    commit = split_command(COMMIT)[2]
    assert commit.subcommand == "commit"
    assert "Fix the parser" not in commit.text and commit.text.startswith("git commit -m")
    assert [a.text for a in split_command('bash -lc "cd /repo && pytest -q"')] == [
        "cd /repo",
        "pytest -q",
    ]


def test_loop_keywords_are_not_part_of_the_text():
    actions = split_command("for f in a b; do cat $f; done")
    assert [(a.program, a.text) for a in actions] == [("cat", "cat $f")]


def test_heredoc_body_is_not_run():
    # the body mentions rm and git push; none of it is a command
    body = "cat > notes.sh <<'EOF'\nrm -rf build\ngit push --force\nEOF\nls"
    assert [(a.program, a.family) for a in split_command(body)] == [
        ("cat", "create"),
        ("ls", "navigate"),
    ]


def test_an_unterminated_heredoc_runs_to_the_end():
    actions = split_command("python - <<EOF\nimport os\nos.remove('x')\n")
    assert [(a.program, a.family, a.path) for a in actions] == [("python", "script", None)]


def test_a_megabyte_command_is_bounded():
    huge = "echo " + "a" * 1_000_000 + " && pytest -q"
    actions = split_command(huge)
    assert [(a.program, a.family) for a in actions] == [("echo", "other")]
    assert len(actions[0].text) == MAX_TEXT_CHARS
    many = "ls && " * 200_000
    assert len(split_command(many)) < 5_000


def test_deep_nesting_and_junk_do_not_raise():
    assert split_command("echo $(" * 100_000)[-1].program == "echo"
    nested = "ls"
    for _ in range(3):
        nested = "sh -c " + shlex.quote(nested)
    assert [a.program for a in split_command(nested)] == ["ls"]
    for _ in range(6):  # quoting grows ~3x a level: 9 levels is 13 kB
        nested = "sh -c " + shlex.quote(nested)
    assert [a.family for a in split_command(nested)] == ["script"]  # past the depth limit
    for junk in ["\x00\x01\xff", "'\"`$((", "<<", "<<EOF", ">", "| |", "&&&", "$'\\", "))((", "\\"]:
        assert all(isinstance(a, Action) for a in split_command(junk))
    assert split_command(None) == []  # type: ignore[arg-type]


def test_random_shell_text_never_raises_in_the_parser_itself():
    # `_split` has no safety net around it, so a bug would show here
    alphabet = list("ab -|&;<>()$`'\"\\\n\t#{}=*.:/019") + [
        "<<EOF", "EOF", "bash -c ", "$(", "sed -i ", "python -m ", "git ", "<(", "${", "$'",
    ]  # fmt: skip
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        for action in _split(text, 0):
            assert action.family in FAMILIES and len(action.text) <= MAX_TEXT_CHARS


@pytest.mark.parametrize(
    "tool,args,expected",
    [
        ("str_replace_editor", {"command": "view", "path": "/testbed/x.py"}, ("view", "/testbed/x.py", "view")),
        ("str_replace_editor", {"command": "create", "path": "/t/r.py", "file_text": "x"}, ("create", "/t/r.py", "create")),
        ("str_replace_based_edit_tool", {"command": "str_replace", "path": "a.py", "old_str": "x"}, ("edit", "a.py", "str_replace")),
        ("text_editor", {"command": "insert", "path": "a.py", "insert_line": 3}, ("edit", "a.py", "insert")),
        ("file_editor", {"command": "undo_edit", "path": "a.py"}, ("edit", "a.py", "undo_edit")),
        ("edit_tool", {"command": "view_range", "path": "a.py"}, ("view", "a.py", "view_range")),
        # SWE-agent records the whole action line
        ("str_replace_editor", {"command": "str_replace_editor str_replace /testbed/x.py --old_str 'a\nb'"}, ("edit", "/testbed/x.py", "str_replace")),
        ("str_replace_editor", "str_replace_editor view /testbed/y.py", ("view", "/testbed/y.py", "view")),
        ("str_replace_editor", "str_replace_editor create '/testbed/unclosed.py --file_text", ("create", "'/testbed/unclosed.py", "create")),
        # Claude Code
        ("Read", {"file_path": "/repo/src/a.py", "offset": 10}, ("view", "/repo/src/a.py", None)),
        ("NotebookRead", {"notebook_path": "nb.ipynb"}, ("view", "nb.ipynb", None)),
        ("Edit", {"file_path": "/repo/src/a.py", "old_string": "x", "new_string": "y"}, ("edit", "/repo/src/a.py", None)),
        ("MultiEdit", {"file_path": "b.py", "edits": []}, ("edit", "b.py", None)),
        ("NotebookEdit", {"notebook_path": "nb.ipynb", "new_source": ""}, ("edit", "nb.ipynb", None)),
        ("Write", {"file_path": "/repo/test_new.py", "content": "x"}, ("create", "/repo/test_new.py", None)),
        ("Grep", {"pattern": "def main", "path": "src"}, ("search", "src", None)),
        ("Grep", {"pattern": "def main"}, ("search", None, None)),
        ("Glob", {"pattern": "**/*.py"}, ("search", "**/*.py", None)),
        ("LS", {"path": "/repo"}, ("navigate", "/repo", None)),
        # SWE-agent commands as tool names
        ("open", {"command": "open /testbed/src/x.py 120"}, ("view", "/testbed/src/x.py", None)),
        ("goto", {"command": "goto 300"}, ("view", None, None)),
        ("scroll_down", {"command": "scroll_down"}, ("view", None, None)),
        ("find_file", {"command": "find_file fields.py /testbed/django"}, ("search", "/testbed/django", None)),
        ("search_dir", {"command": "search_dir 'url_for' src"}, ("search", "src", None)),
        ("search_file", {"command": "search_file deconstruct"}, ("search", None, None)),
        ("edit", {"command": "edit 10:12\n    return x\nend_of_edit"}, ("edit", None, None)),
        ("create", {"command": "create reproduce.py"}, ("create", "reproduce.py", None)),
        ("submit", {"command": "submit"}, ("submit", None, None)),
        # generic file tools
        ("read_file", {"target_file": "src/a.py"}, ("view", "src/a.py", None)),
        ("view_file", {"path": "a.py"}, ("view", "a.py", None)),
        ("open_file", {"filename": "a.py"}, ("view", "a.py", None)),
        ("write_file", {"path": "out.txt", "content": ""}, ("create", "out.txt", None)),
        ("create_file", {"file": "n.py"}, ("create", "n.py", None)),
        ("edit_file", {"target_file": "a.py", "code_edit": ""}, ("edit", "a.py", None)),
        ("replace_in_file", {"path": "a.py"}, ("edit", "a.py", None)),
        ("apply_patch", {"input": "*** Begin Patch\n*** Update File: pkg/mod.py\n@@\n-x\n+y"}, ("edit", "pkg/mod.py", None)),
        ("list_dir", {"relative_workspace_path": "src"}, ("navigate", None, None)),
        ("list_files", {"path": "src"}, ("navigate", "src", None)),
        ("grep", {"pattern": "x", "path": "lib"}, ("search", "lib", None)),
        ("search_files", {"regex": "x", "path": "."}, ("search", ".", None)),
        ("find_files", {"pattern": "*.py"}, ("search", None, None)),
        ("codebase_search", {"query": "where is auth"}, ("search", None, None)),
    ],
)  # fmt: skip
def test_editor_action(tool, args, expected):
    action = editor_action(tool, args)
    assert action is not None and action.program == tool
    assert (action.family, action.path, action.subcommand) == expected
    assert 0 < len(action.text) <= MAX_TEXT_CHARS


def test_editor_action_text_names_the_tool_and_file():
    assert editor_action("Read", {"file_path": "a.py"}).text == "Read a.py"
    line = "str_replace_editor view /testbed/y.py"
    assert editor_action("str_replace_editor", {"command": line}).text == line


@pytest.mark.parametrize(
    "tool,args",
    [("bash", {"command": "ls"}), ("Bash", {"command": "ls"}), ("web_search", {"query": "x"}),
     ("read_file", "not a dict"), (None, {}), ("execute_ipython_cell", {"code": "print(1)"})],
)  # fmt: skip
def test_editor_action_is_none_for_other_tools(tool, args):
    if tool == "read_file":
        assert editor_action(tool, args).path is None  # a file tool still, without a file
    else:
        assert editor_action(tool, args) is None


@pytest.mark.parametrize(
    "tool,args,command",
    [
        ("bash", {"command": "ls -la"}, "ls -la"),
        ("Bash", {"command": "git diff", "description": "Show changes"}, "git diff"),
        ("execute_bash", {"command": "pytest -q", "is_input": "false"}, "pytest -q"),
        ("run_command", {"cmd": "make test"}, "make test"),
        ("run_shell_command", "pip install x", "pip install x"),
        ("terminal", {"input": "cd src"}, "cd src"),
        ("run_terminal_cmd", {"command": "npm test", "is_background": False}, "npm test"),
        ("container.exec", {"cmd": ["bash", "-lc", "git status"]}, "git status"),
        ("shell", {"command": ["rg", "-n", "foo bar", "src"]}, "rg -n 'foo bar' src"),
        ("my_shell_tool", {"script": "echo hi"}, "echo hi"),
        ("bash", {"restart": True}, None),
        ("bash", {"command": "   "}, None),
        ("python", {"code": "print(1)"}, None),
        ("execute_command", {"code": "import os"}, None),  # `code` is Python, not shell
        ("read_file", {"command": "ls"}, None),
        ("bash", 42, None),
    ],
)
def test_shell_command(tool, args, command):
    assert shell_command(tool, args) == command


def test_call_actions_routes_shell_and_editor_tools():
    assert [a.family for a in call_actions("bash", {"command": "cd /r && pytest -q"})] == [
        "navigate",
        "test",
    ]
    assert [a.family for a in call_actions("Edit", {"file_path": "a.py"})] == ["edit"]
    assert call_actions("web_search", {"query": "pytest"}) == []
    assert call_actions("python", {"code": "import os"}) == []


@pytest.mark.parametrize(
    "path,expected",
    [
        ("tests/test_models.py", True),
        ("/testbed/tests/", True),
        ("tests", True),
        ("src/testing/util.py", True),
        ("web/__tests__/App.js", True),
        ("spec/models/user_spec.rb", True),
        ("test_fix.py", True),
        ("pkg/models_test.py", True),
        ("django/tests.py", True),
        ("conftest.py", True),
        ("server/handler_test.go", True),
        ("src/App.test.tsx", True),
        ("src/api.spec.ts", True),
        ("src/main/java/FooTest.java", True),
        ("tests/a/test_b.py::test_c", True),
        ("src/models.py", False),
        ("reproduce.py", False),
        ("src/contest.py", False),
        ("latest/notes.md", False),
        ("testdata.json", False),
        ("", False),
        (None, False),
    ],
)
def test_is_test_path(path, expected):
    assert is_test_path(path) is expected
