"""The live step table of `--progress tty`, drawn with rich (imported only for a terminal).

Independent stages run at once (engine/scheduler.py), so several steps may be running: each
running step shows its last lines of output under it, as BuildKit's view does, and loses them
when it is done (a failed step keeps them, beside its error)."""

from __future__ import annotations

import time
from collections import deque

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from layerbuild.engine.events import (
    BuildDone,
    BuildEvent,
    CheckWarned,
    Log,
    StepDone,
    StepFailed,
    StepStarted,
)
from layerbuild.ui.progress import _plain_line, _Row, check_line

TAIL_LINES = 6  # of a running step's output (BuildKit's tty view shows as many)


class TtyProgress:
    """A live table of steps: instruction, status (DONE/CACHED/ERROR), time."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.rows: dict[int, _Row] = {}
        self.done: BuildDone | None = None
        self.tails: dict[int, deque[str]] = {}  # step id -> its last lines, while it runs
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
            self.tails.pop(event.step_id, None)
        elif isinstance(event, Log) and event.step_id in self.rows:
            tail = self.tails.setdefault(event.step_id, deque(maxlen=TAIL_LINES))
            tail.extend(event.message.splitlines() or [""])
        elif isinstance(event, StepFailed) and event.step_id in self.rows:
            row = self.rows[event.step_id]
            row.status, row.seconds = "ERROR", event.seconds
        elif isinstance(event, BuildDone):
            self.done = event
        elif isinstance(event, CheckWarned):
            self.console.print(Text(check_line(event), style="yellow"))
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
            for line in self.tails.get(step_id, ()):
                table.add_row("", Text(line[:120], style="dim", overflow="ellipsis"), "", "")
        if self.done is not None:
            table.add_row("", Text(_plain_line(self.done), style="bold"), "", "")
        return table

    def close(self) -> None:
        self.live.update(self._render())
        self.live.stop()
