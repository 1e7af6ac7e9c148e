"""Terminal output: one place for messages, tables and progress, honouring --quiet/--verbose.

Messages go to stderr so that a command's data output (``sql --format csv``, ``stats --json``)
stays clean on stdout. Progress is a bar on a terminal; elsewhere (a log, CI) a line every
``LINE_EVERY_S`` seconds: done/total, rate, time left, and what the status sources say (the model
layer adds its calls, tokens per second and errors by kind).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

T = TypeVar("T")
LINE_EVERY_S = 10.0


class Console:
    def __init__(self, verbosity: int = 1):
        """verbosity: 0 quiet (errors only), 1 normal, 2 verbose."""
        self.verbosity = verbosity
        self.err = RichConsole(stderr=True, highlight=False, soft_wrap=True)
        self.out = RichConsole(highlight=False, soft_wrap=True)
        self.status_sources: list[Callable[[], str | None]] = []
        self.line_every_s = LINE_EVERY_S

    def add_status(self, source: Callable[[], str | None]) -> None:
        """Something that can say how it is going, for the progress lines."""
        self.status_sources.append(source)

    def status(self) -> str:
        said = [text for source in self.status_sources if (text := source())]
        return "; ".join(said)

    def __reduce__(self):
        # Sent to a worker process (a Ray actor), a console is its verbosity: the worker opens
        # its own streams (terminal handles and locks cannot be pickled).
        return (Console, (self.verbosity,))

    def info(self, message: str) -> None:
        if self.verbosity >= 1:
            self.err.print(message, markup=False)

    def detail(self, message: str) -> None:
        if self.verbosity >= 2:
            self.err.print(message, markup=False, style="dim")

    def warn(self, message: str) -> None:
        if self.verbosity >= 1:
            self.err.print(f"warning: {message}", markup=False, style="yellow")

    def error(self, message: str) -> None:
        self.err.print(f"error: {message}", markup=False, style="bold red")

    def table(
        self, title: str | None, columns: list[str], rows: Iterable[Iterable[object]]
    ) -> None:
        """A readable table on stdout (shown even with --quiet: it is the command's output)."""
        t = Table(title=title, title_justify="left")
        for col in columns:
            t.add_column(col, overflow="fold")
        for row in rows:
            t.add_row(*("" if v is None else str(v) for v in row))
        self.out.print(t)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[callable]:
        """Yields `advance(n=1)`; draws a bar on a terminal, else prints a line now and then."""
        if self.verbosity < 1:
            yield lambda n=1: None
            return
        if not self.err.is_terminal:
            with self._lines(description, total) as advance:
                yield advance
            return
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.err,
            transient=True,
        )
        with bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)

    @contextmanager
    def _lines(self, description: str, total: int | None) -> Iterator[callable]:
        start = last = time.monotonic()
        done = 0

        def line(now: float) -> None:
            rate = done / max(now - start, 1e-9)
            parts = [f"{description}: {done:,}" + (f"/{total:,}" if total else "")]
            parts.append(f"{rate:.2f}/s")
            if total and rate > 0 and done < total:
                parts.append(f"about {_duration((total - done) / rate)} left")
            if status := self.status():
                parts.append(status)
            self.err.print(" | ".join(parts), markup=False)

        def advance(n: int = 1) -> None:
            nonlocal done, last
            done += n
            now = time.monotonic()
            if now - last >= self.line_every_s:
                last = now
                line(now)

        yield advance
        if time.monotonic() - start >= self.line_every_s:
            line(time.monotonic())

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        with self.progress(description, total) as advance:
            for item in items:
                yield item
                advance()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 run', '3 runs' ('1 query', '2 queries' with `many`)."""
    return f"{n} {word if n == 1 else many or word + 's'}"
