"""Where each step's bar goes on a build page's timeline: when it started and for how long.

A report written by `build` notes each step's start (engine/report.py `start`, seconds after
the build started), so stages built at once (`--jobs`) show as bars that overlap. Reports
written before that, and dry runs, have durations only: a step without a start is placed where
the step before it ended, as if the build ran one step after the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Bar:
    start: float  # seconds after the build started
    seconds: float
    left: float  # percent of the timeline's width
    width: float
    measured: bool  # False: placed after the previous step (the report had no start)

    @property
    def end(self) -> float:
        return self.start + self.seconds


def layout(steps: Sequence[Mapping[str, Any]], total: float = 0.0) -> list[Bar]:
    """One bar per step, in the steps' order; `total` is the build's duration (the timeline is
    as wide as the longer of it and the last step's end)."""
    placed: list[tuple[float, float, bool]] = []
    end = 0.0
    for step in steps:
        seconds = max(_number(step.get("seconds")) or 0.0, 0.0)
        start = _number(step.get("start"))
        measured = start is not None
        begin = max(start, 0.0) if start is not None else end
        placed.append((begin, seconds, measured))
        end = begin + seconds
    span = max([total, *(b + s for b, s, _ in placed)])
    if span <= 0:
        span = 1.0  # a build of instant steps: all bars at the left edge
    return [
        Bar(b, s, round(100 * b / span, 3), round(100 * s / span, 3), m) for b, s, m in placed
    ]


def overlaps(a: Bar, b: Bar) -> bool:
    """Whether two steps ran at the same time."""
    return a.start < b.end and b.start < a.end


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
