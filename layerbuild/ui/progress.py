"""Renderers of the build event stream: a live rich view on terminals, plain lines in CI, quiet.

The executor emits events and never prints; a renderer is a callable taking one event. Progress
goes to stderr so that stdout stays free for what scripts read (the digest with --quiet).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from layerbuild.build.events import BuildDone, BuildEvent, Log, StepDone, StepFailed, StepStarted

MODES = ("auto", "plain", "tty", "quiet")


class QuietProgress:
    """Nothing but warnings (on stderr): --quiet keeps stdout for the digest, not silence
    about what the user must know."""

    def __call__(self, event: BuildEvent) -> None:
        if isinstance(event, Log) and event.message.startswith("warning:"):
            print(event.message, file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class PlainProgress:
    """One line per event, in the style of BuildKit's plain output."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: BuildEvent) -> None:
        line = _plain_line(event)
        if line:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        pass


def _plain_line(event: BuildEvent) -> str:
    if isinstance(event, StepStarted):
        return f"#{event.step_id} [{event.stage} {event.index}/{event.total}] {event.text}"
    if isinstance(event, StepDone):
        what = "CACHED" if event.cached else "DONE"
        extra = f" {event.note}" if event.note else ""
        layer = f" layer {event.layer.short}" if event.layer else ""
        why = f" ({event.reason})" if event.reason and not event.cached else ""
        return f"#{event.step_id} {what} {event.seconds:.1f}s{layer}{extra}{why}"
    if isinstance(event, StepFailed):
        first = event.error.splitlines()[0] if event.error else ""
        return f"#{event.step_id} ERROR {event.seconds:.1f}s: {first}"
    if isinstance(event, Log):
        prefix = f"#{event.step_id} " if event.step_id is not None else ""
        return f"{prefix}{event.message}"
    if isinstance(event, BuildDone):
        names = ", ".join(event.tags) if event.tags else "(untagged)"
        return f"built {event.digest} {names} in {event.seconds:.1f}s"
    return ""


@dataclass
class _Row:
    label: str
    started: float
    status: str = "RUNNING"
    seconds: float | None = None
    note: str = ""
    logs: list[str] = field(default_factory=list)


class TtyProgress:
    """A live table of steps: instruction, status (DONE/CACHED/ERROR), time."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.rows: dict[int, _Row] = {}
        self.done: BuildDone | None = None
        self.live = Live(
            self._render(), console=self.console, refresh_per_second=8, transient=False
        )
        self.live.start()

    def __call__(self, event: BuildEvent) -> None:
        if isinstance(event, StepStarted):
            label = f"[{event.stage} {event.index}/{event.total}] {event.text}"
            self.rows[event.step_id] = _Row(label, time.monotonic())
        elif isinstance(event, StepDone) and event.step_id in self.rows:
            row = self.rows[event.step_id]
            row.status = "CACHED" if event.cached else "DONE"
            row.seconds, row.note = event.seconds, event.note
        elif isinstance(event, StepFailed) and event.step_id in self.rows:
            row = self.rows[event.step_id]
            row.status, row.seconds = "ERROR", event.seconds
        elif isinstance(event, BuildDone):
            self.done = event
        self.live.update(self._render())

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right", style="dim")
        table.add_column()
        table.add_column(justify="right")
        table.add_column(justify="right", style="dim")
        styles = {"DONE": "green", "CACHED": "cyan", "ERROR": "bold red", "RUNNING": "yellow"}
        now = time.monotonic()
        for step_id, row in self.rows.items():
            seconds = row.seconds if row.seconds is not None else now - row.started
            table.add_row(
                f"#{step_id}",
                Text(row.label[:100], overflow="ellipsis"),
                Text(row.status, style=styles[row.status]),
                f"{seconds:.1f}s",
            )
        if self.done is not None:
            table.add_row("", Text(_plain_line(self.done), style="bold"), "", "")
        return table

    def close(self) -> None:
        self.live.update(self._render())
        self.live.stop()


Renderer = QuietProgress | PlainProgress | TtyProgress


def make_progress(mode: str, *, stderr_is_tty: bool | None = None) -> Renderer:
    """The renderer for --progress MODE ('auto' picks tty on a terminal, else plain)."""
    if mode == "auto":
        tty = sys.stderr.isatty() if stderr_is_tty is None else stderr_is_tty
        mode = "tty" if tty else "plain"
    if mode == "quiet":
        return QuietProgress()
    if mode == "tty":
        return TtyProgress()
    return PlainProgress()
