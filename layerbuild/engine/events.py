"""Build events: what the executor tells the outside world. The engine never prints."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from layerbuild.digest import Digest
from layerbuild.engine.layerfiles import LayerFiles
from layerbuild.registry.remotecache.spec import CacheTransfer


@dataclass(frozen=True, slots=True)
class StepStarted:
    """A step begins; `step_id` names it in the events that follow."""

    step_id: int  # 1-based, unique in one build
    stage: str  # stage name, or its index as text
    index: int  # 1-based position of the step within its stage
    total: int  # steps in the stage (FROM included)
    line: int
    text: str  # the instruction as written, one line


@dataclass(frozen=True, slots=True)
class StepDone:
    """A step ended: cached or run, with why it missed and what it made."""

    step_id: int
    seconds: float
    layer: Digest | None = None
    cached: bool = False
    note: str = ""
    key: Digest | None = None
    reason: str = ""  # why a step missed the cache
    unknown: bool = False  # a dry run: only running the build could tell hit from miss
    details: tuple[str, ...] = ()  # a dry run's lines under the step (changed files, hints)
    files: LayerFiles | None = None  # a step that ran: what its layer added, changed, removed


@dataclass(frozen=True, slots=True)
class StepFailed:
    """A step ended with an error; the build stops after it."""

    step_id: int
    seconds: float
    error: str


@dataclass(frozen=True, slots=True)
class Log:
    """A line of output: a step's (its command's) or the build's own (`step_id` None)."""

    step_id: int | None
    message: str


@dataclass(frozen=True, slots=True)
class CheckWarned:
    """A Dockerfile check's warning (layerbuild/checks), found before any step runs."""

    rule: str
    message: str
    line: int
    url: str

    def short(self) -> str:
        """BuildKit's form: `Rule: message (line N)`."""
        return f"{self.rule}: {self.message} (line {self.line})"


@dataclass(frozen=True, slots=True)
class BuildDone:
    """The build wrote its image: the manifest digest and the tags that point at it."""

    digest: Digest  # manifest digest
    tags: tuple[str, ...]
    seconds: float
    saved: float = 0.0  # seconds cached steps took when they last ran


def serialized(emit: Callable[[BuildEvent], None]) -> Callable[[BuildEvent], None]:
    """`emit`, called by one thread at a time: a build's stages run on threads of their own
    (engine/scheduler.py) and a progress view draws one event after the other."""
    lock = threading.RLock()  # a view that emits while drawing must not wait for itself

    def one_at_a_time(event: BuildEvent) -> None:
        with lock:
            emit(event)

    return one_at_a_time


# CacheTransfer is made where the transfers are (registry/remotecache) and is one of the events
__all__ = [
    "BuildDone",
    "BuildEvent",
    "CacheTransfer",
    "CheckWarned",
    "Log",
    "serialized",
    "StepDone",
    "StepFailed",
    "StepStarted",
]

BuildEvent = (
    StepStarted | StepDone | StepFailed | Log | CheckWarned | BuildDone | CacheTransfer
)
