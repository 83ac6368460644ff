"""Step-by-step progress on the terminal with rich, or silence for tests and services."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.markup import escape


class Progress:
    """Shows one status line per step while it runs and one result line when it ends.

    Kept separate from the build code so that callers (CLI, tests, agent) choose how loud a
    build is without the build code knowing about terminals.
    """

    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self._status = None
        self._title = ""
        self._outcome: str | None = None

    @contextmanager
    def step(self, title: str) -> Iterator["Progress"]:
        """Run one step: a spinner while it works, a check mark (and time) when done."""
        started = time.monotonic()
        self._title = title
        self._outcome = None
        if self.quiet:
            yield self
            return
        with self.console.status(escape(title)) as status:
            self._status = status
            try:
                yield self
            except BaseException:
                self._status = None
                self.console.print(f"[red]✗[/] {escape(title)}")
                raise
            self._status = None
        took = f"[dim]({time.monotonic() - started:.1f} s)[/]"
        if self._outcome is None:
            self.console.print(f"[green]✓[/] {escape(title)} {took}")
        else:
            self.console.print(f"[yellow]–[/] {escape(title)}: {escape(self._outcome)} {took}")

    def skipped(self, reason: str) -> None:
        """End the running step without success (e.g. a pull that failed and has a fallback)."""
        self._outcome = reason

    def update(self, detail: str) -> None:
        """Show the latest output line of the running step next to its title."""
        detail = " ".join(detail.split())
        if self._status is not None and detail:
            self._status.update(f"{escape(self._title)} [dim]{escape(detail[:100])}[/]")

    def note(self, message: str) -> None:
        """Print a line that should stay on screen (a decision the user may care about)."""
        if not self.quiet:
            self.console.print(f"  [dim]{escape(message)}[/]")


def as_progress(progress: "Progress | bool | None") -> Progress:
    """Accept a Progress, True (rich on stderr) or False/None (silent)."""
    if isinstance(progress, Progress):
        return progress
    return Progress(quiet=not progress)
