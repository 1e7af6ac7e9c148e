"""Terminal output: one place for messages, tables and progress bars, honouring --quiet/--verbose.

Messages go to stderr so that a command's data output (``sql --format csv``, ``stats --json``)
stays clean on stdout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

T = TypeVar("T")


class Console:
    def __init__(self, verbosity: int = 1):
        """verbosity: 0 quiet (errors only), 1 normal, 2 verbose."""
        self.verbosity = verbosity
        self.err = RichConsole(stderr=True, highlight=False, soft_wrap=True)
        self.out = RichConsole(highlight=False, soft_wrap=True)

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
        """Yields `advance(n=1)`; draws a bar on a terminal unless quiet."""
        if self.verbosity < 1 or not self.err.is_terminal:
            yield lambda n=1: None
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

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        with self.progress(description, total) as advance:
            for item in items:
                yield item
                advance()
