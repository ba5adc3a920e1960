"""What `build --dry-run` shows: its verdicts folded into a report (engine/report.py), the
build's notes and warnings as they come, and the verdicts as a table with the columns of
`cache compare` (ui/cachelisting.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from layerbuild.engine.events import BuildEvent, Log
from layerbuild.engine.report import BuildReport
from layerbuild.ui.cachelisting import row


class DryRunView:
    """The events of a dry run (engine/dryrun.py): `note` gets the build's notes."""

    def __init__(self, note: Callable[[str], None]) -> None:
        self.report = BuildReport(dry_run=True)
        self.note = note
        self.started = time.monotonic()

    def __call__(self, event: BuildEvent) -> None:
        self.report(event)
        if isinstance(event, Log) and event.step_id is None:  # warnings and notes
            self.note(event.message)

    def done(self) -> BuildReport:
        self.report.seconds = time.monotonic() - self.started
        return self.report

    def table(self) -> str:
        return dry_run_table(self.done())

    def would_build(self) -> bool:
        """Whether a step would miss the cache or is unknown (`--dry-run=strict` fails)."""
        return any(s.cache in ("miss", "unknown") for s in self.report.steps)


def dry_run_table(report: BuildReport) -> str:
    """`build --dry-run`'s view: per step its stage, line, instruction, what the cache would
    do and why (as `cache compare` shows B), the lines a step adds below it; then the counts."""
    rows: list[tuple[str, ...]] = [("STAGE", "LINE", "INSTRUCTION", "CACHE", "REASON")]
    below: dict[int, tuple[str, ...]] = {}
    for step in report.steps:
        cells = row(step, step.cache, "", step.reason)
        rows.append((*cells[:3], step.cache, step.reason))
        below[len(rows) - 1] = step.details
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, r in enumerate(rows):
        text = "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True))
        lines.append((text + "  " + r[4]).rstrip())
        lines += [" " * (sum(widths[:3]) + 6) + "  " + d for d in below.get(n, ())]
    counts = {c: sum(1 for s in report.steps if s.cache == c) for c in ("hit", "miss", "unknown")}
    lines.append("")
    lines.append(
        f"dry run: {len(report.steps)} steps, {counts['hit']} hit, {counts['miss']} miss, "
        f"{counts['unknown']} unknown ({report.seconds:.2f}s); nothing was built"
    )
    return "\n".join(lines)
