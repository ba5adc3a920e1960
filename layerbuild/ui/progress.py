"""Renderers of the build event stream: a live rich view on terminals, plain lines in CI, quiet,
and rawjson (one JSON object per event, for programs).

The executor emits events and never prints; a renderer is a callable taking one event. Progress
goes to stderr so that stdout stays free for what scripts read (the digest with --quiet).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from layerbuild.engine.events import (
    BuildDone,
    BuildEvent,
    CheckWarned,
    Log,
    StepDone,
    StepFailed,
    StepStarted,
)


class QuietProgress:
    """Nothing but warnings (on stderr): --quiet keeps stdout for the digest, not silence
    about what the user must know."""

    def __call__(self, event: BuildEvent) -> None:
        if isinstance(event, Log) and event.message.startswith("warning:"):
            print(event.message, file=sys.stderr, flush=True)
        elif isinstance(event, CheckWarned):
            print(check_line(event), file=sys.stderr, flush=True)

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


class RawJsonProgress:
    """One JSON object per event and line: `{"event": CLASS, FIELD: VALUE, ...}`, the fields
    of engine/events.py (digests as strings). buildx's rawjson prints BuildKit's solve status
    objects instead; ours are the events the engine has, under their own names."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: BuildEvent) -> None:
        print(json.dumps(event_json(event)), file=self.stream, flush=True)

    def close(self) -> None:
        pass


def event_json(event: BuildEvent) -> dict[str, Any]:
    """An event as rawjson prints it."""
    out: dict[str, Any] = {"event": type(event).__name__}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, tuple):
            value = [str(v) for v in value]
        elif not (value is None or isinstance(value, int | float | bool)):
            value = str(value)
        out[f.name] = value
    return out


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
    if isinstance(event, CheckWarned):
        return check_line(event)
    if isinstance(event, BuildDone):
        names = ", ".join(event.tags) if event.tags else "(untagged)"
        return f"built {event.digest} {names} in {event.seconds:.1f}s"
    return ""


def check_line(event: CheckWarned) -> str:
    """A build check's warning as BuildKit prints it: `WARN: Rule: message (line N)`."""
    return f"WARN: {event.short()}"


@dataclass
class _Row:
    """One step's line in the terminal view, updated in place as the step runs."""

    label: str
    started: float
    status: str = "RUNNING"
    seconds: float | None = None
    note: str = ""


class Renderer(Protocol):
    """What the CLI drives: called with each event, closed at the end."""

    def __call__(self, event: BuildEvent) -> None: ...

    def close(self) -> None: ...


def make_progress(mode: str, *, stderr_is_tty: bool | None = None) -> Renderer:
    """The renderer for --progress MODE ('auto' picks tty on a terminal, else plain)."""
    if mode == "auto":
        tty = sys.stderr.isatty() if stderr_is_tty is None else stderr_is_tty
        mode = "tty" if tty else "plain"
    if mode == "quiet":
        return QuietProgress()
    if mode == "rawjson":
        return RawJsonProgress()
    if mode == "tty":
        from layerbuild.ui.tty import TtyProgress  # rich costs start-up time: only for a tty

        return TtyProgress()
    return PlainProgress()
