"""Progress where no one watches a bar: a line now and then, with what the sources say."""

from __future__ import annotations

import io

from rich.console import Console as RichConsole

from pipeline.console import Console


def test_progress_off_a_terminal_prints_a_line_now_and_then():
    console = Console()
    stream = io.StringIO()
    console.err = RichConsole(file=stream, force_terminal=False, width=200)
    console.line_every_s = 0.0  # every advance is due: the test counts lines, not seconds
    console.add_status(lambda: "3 calls, errors: timeout 1")
    console.add_status(lambda: None)  # a source with nothing to say yet is left out
    with console.progress("analysing", 4) as advance:
        advance()
        advance(3)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("analysing: 1/4 | ") and "left" in lines[0]
    assert lines[0].endswith("| 3 calls, errors: timeout 1")
    assert lines[1].startswith("analysing: 4/4 | ") and "left" not in lines[1]


def test_a_quiet_console_prints_no_progress():
    console = Console(0)
    stream = io.StringIO()
    console.err = RichConsole(file=stream, force_terminal=False)
    console.line_every_s = 0.0
    with console.progress("analysing", 2) as advance:
        advance(2)
    assert stream.getvalue() == ""
