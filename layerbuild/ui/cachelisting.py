"""What `cache ls` and `cache compare` show: the build cache's records, and two builds' reports
step by step, as text and JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from layerbuild.engine.report import BuildReport, StepRecord
from layerbuild.errors import LayerbuildError
from layerbuild.registry.reference import normalize_tag
from layerbuild.store.cacheindex import CacheIndex
from layerbuild.ui.listing import human_size


def _ago(then: float, now: float) -> str:
    seconds = max(0.0, now - then)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def list_records(root: Path, fmt: str) -> str:
    """The cache records, most recently used first, as a table or JSON."""
    entries = sorted(CacheIndex(root).entries(), key=lambda e: e.last_used, reverse=True)
    if fmt == "json":
        rows = [
            {
                "key": str(e.record.key.digest),
                "step": e.record.step_text,
                "layer": str(e.record.layer.digest) if e.record.layer else None,
                "size": e.record.layer.size if e.record.layer else 0,
                "created": e.record.created,
                "last_used": e.last_used,
            }
            for e in entries
        ]
        return json.dumps(rows, indent=2)
    now = time.time()
    lines = [f"{'KEY':<14}{'SIZE':>9}  {'CREATED':<17}{'LAST USED':<11}STEP"]
    for e in entries:
        created = datetime.fromtimestamp(e.record.created).strftime("%Y-%m-%d %H:%M")
        step = e.record.step_text.replace("\n", "\\n")  # heredocs stay on one row
        step = step if len(step) <= 60 else step[:57] + "..."
        key = e.record.key.digest.hex[:12]
        size = human_size(e.record.layer.size) if e.record.layer else "-"
        lines.append(f"{key:<14}{size:>9}  {created:<17}{_ago(e.last_used, now):<11}{step}")
    return "\n".join(lines)


def load_report(
    root: Path, name: str, build: Callable[[str], dict[str, Any] | None] | None = None
) -> BuildReport:
    """A --report file, the last build report the store kept for the image `name`, or the
    record of the build `name` names (`build`: the history's resolver)."""
    path = Path(name)
    if path.is_file():
        try:
            obj = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise LayerbuildError(f"cannot read the report {path}: {e}") from None
        if not isinstance(obj, dict):
            raise LayerbuildError(f"{path} is not a --report file (not a JSON object)")
        return BuildReport.from_json(obj)
    if build is not None and name.startswith("^"):
        saved = build(name)
        if saved is not None:
            return BuildReport.from_json(saved)
    try:
        tag = normalize_tag(name)
    except LayerbuildError:
        tag = None
    saved = CacheIndex(root).load_report(tag) if tag else None
    if saved is None and build is not None:
        saved = build(name)
    if saved is None:
        raise LayerbuildError(
            f"{name} is neither a report file nor an image with a kept build report, "
            "nor a build of the history",
            hint="pass the files written by `build --report FILE`, names of images built "
            "(and tagged) with layerbuild, or build ids (`layerbuild builds ls`)",
        )
    return BuildReport.from_json(saved)


def compare_reports(a: BuildReport, b: BuildReport) -> str:
    """Side by side, step by step (matched by stage and position): A's and B's cache, B's
    reason; then each build's hits, misses and hit ratio."""
    by_step_a = {(s.stage, s.index): s for s in a.steps}
    rows: list[tuple[str, ...]] = [("STAGE", "LINE", "INSTRUCTION", "A", "B", "REASON (B)")]
    seen = set()
    for step in b.steps:
        old = by_step_a.get((step.stage, step.index))
        seen.add((step.stage, step.index))
        rows.append(row(step, old.cache if old else "-", step.cache, step.reason))
    for step in a.steps:
        if (step.stage, step.index) not in seen:
            rows.append(row(step, step.cache, "-", "not in B"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in rows
    ]
    lines.append("")
    for label, report in (("A", a), ("B", b)):
        s = report.summary()
        lines.append(
            f"{label}: {s['steps']} steps, {s['hits']} hits, {s['misses']} misses, "
            f"hit ratio {s['hit_ratio']:.0%}" + (f", image {report.image}" if report.image else "")
        )
    return "\n".join(line.rstrip() for line in lines)


def row(step: StepRecord, a: str, b: str, reason: str) -> tuple[str, ...]:
    """A step as `cache compare` shows it: stage, line, the instruction cut to 40, A, B, why."""
    text = step.instruction if len(step.instruction) <= 40 else step.instruction[:37] + "..."
    return (step.stage, str(step.line), text, a, b, reason if b == "miss" else reason or "")


def compare_json(a: BuildReport, b: BuildReport) -> dict[str, Any]:
    by_step_a = {(s.stage, s.index): s for s in a.steps}
    steps = []
    for step in b.steps:
        old = by_step_a.get((step.stage, step.index))
        steps.append(
            {
                "stage": step.stage,
                "index": step.index,
                "line": step.line,
                "instruction": step.instruction,
                "a": old.cache if old else None,
                "b": step.cache,
                "reason": step.reason,
            }
        )
    return {"steps": steps, "a": a.summary(), "b": b.summary()}
