"""BuildReport: the per-step record of a build (hit, miss, why), folded from build events.

Pure: it consumes the same events the progress view does. `--report FILE` writes its JSON form;
`cache compare` reads two of them back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from layerbuild.engine.events import (
    BuildDone,
    BuildEvent,
    CacheTransfer,
    CheckWarned,
    StepDone,
    StepFailed,
    StepStarted,
)


@dataclass
class StepRecord:
    """One step in `--report`."""

    stage: str
    index: int
    line: int
    instruction: str
    cache: str = "miss"  # "hit" | "miss" | "unknown" (a dry run) | "skipped" | "error"
    key: str | None = None
    reason: str = ""
    seconds: float = 0.0
    layer: str | None = None
    details: tuple[str, ...] = ()  # a dry run's: the files a missed COPY changed, hints
    # seconds after the build started that the step started (None: not measured, as in
    # reports written before it was); stages built at once (--jobs) overlap in these
    start: float | None = None

    def to_json(self) -> dict[str, Any]:
        details = {"details": list(self.details)} if self.details else {}
        start = {"start": round(self.start, 4)} if self.start is not None else {}
        return {
            "stage": self.stage,
            "index": self.index,
            "line": self.line,
            "instruction": self.instruction,
            "cache": self.cache,
            "key": self.key,
            "reason": self.reason,
            "seconds": round(self.seconds, 4),
            "layer": self.layer,
            **start,
            **details,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StepRecord:
        return cls(
            stage=str(obj.get("stage", "")),
            index=int(obj.get("index", 0)),
            line=int(obj.get("line", 0)),
            instruction=str(obj.get("instruction", "")),
            cache=str(obj.get("cache", "")),
            key=obj.get("key"),
            reason=str(obj.get("reason", "")),
            seconds=float(obj.get("seconds", 0.0)),
            layer=obj.get("layer"),
            details=tuple(str(d) for d in obj.get("details") or ()),
            start=float(obj["start"]) if obj.get("start") is not None else None,
        )


@dataclass
class CacheOutcome:
    """One --cache-from or --cache-to: where, how it went, how many records, why it failed."""

    ref: str
    status: str  # import: "imported" | "none" | "failed"; export: "exported" | "failed"
    records: int = 0
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "status": self.status,
            "records": self.records,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CacheOutcome:
        return cls(
            ref=str(obj.get("ref", "")),
            status=str(obj.get("status", "")),
            records=int(obj.get("records", 0)),
            reason=str(obj.get("reason", "")),
        )


@dataclass
class BuildReport:
    """What `--report` writes: the steps, their verdicts and times."""

    image: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    seconds: float = 0.0
    saved: float = 0.0  # what the cached steps took when they last ran
    cache_imports: list[CacheOutcome] = field(default_factory=list)
    cache_exports: list[CacheOutcome] = field(default_factory=list)
    # the build checks' warnings: {"rule", "message", "line", "url"} (docs/checks.md)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False  # `build --dry-run`: verdicts only, no image
    # when given (time.monotonic), each step's start is noted, relative to the report's making:
    # events carry durations only, and the report folds them as they happen
    clock: Callable[[], float] | None = field(default=None, repr=False, compare=False)
    _by_id: dict[int, StepRecord] = field(default_factory=dict, repr=False)
    _t0: float = field(default=0.0, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.clock is not None:
            self._t0 = self.clock()

    def __call__(self, event: BuildEvent) -> None:
        if isinstance(event, StepStarted):
            record = StepRecord(event.stage, event.index, event.line, event.text)
            if self.clock is not None:
                record.start = self.clock() - self._t0
            self._by_id[event.step_id] = record
            self.steps.append(record)
        elif isinstance(event, StepDone) and event.step_id in self._by_id:
            record = self._by_id[event.step_id]
            record.cache = "hit" if event.cached else "unknown" if event.unknown else "miss"
            record.details = event.details
            record.key = str(event.key) if event.key else None
            record.reason = event.reason
            record.seconds = event.seconds
            record.layer = str(event.layer) if event.layer else None
        elif isinstance(event, StepFailed) and event.step_id in self._by_id:
            record = self._by_id[event.step_id]
            record.cache, record.reason, record.seconds = "error", event.error, event.seconds
        elif isinstance(event, BuildDone):
            self.image, self.seconds = str(event.digest), event.seconds
            self.saved = event.saved
        elif isinstance(event, CheckWarned):
            self.warnings.append(
                {"rule": event.rule, "message": event.message, "line": event.line,
                 "url": event.url})
        elif isinstance(event, CacheTransfer):
            outcome = CacheOutcome(event.ref, event.status, event.records, event.reason)
            imports = event.direction == "import"
            (self.cache_imports if imports else self.cache_exports).append(outcome)

    def summary(self) -> dict[str, Any]:
        counted = [s for s in self.steps if s.cache in ("hit", "miss")]
        hits = sum(1 for s in counted if s.cache == "hit")
        return {
            "steps": len(counted),
            "hits": hits,
            "misses": len(counted) - hits,
            "hit_ratio": round(hits / len(counted), 4) if counted else 0.0,
            "seconds_saved": round(self.saved, 4),
        }

    def to_json(self) -> dict[str, Any]:
        dry = {"dry_run": True} if self.dry_run else {}
        return {
            **dry,
            "image": self.image,
            "seconds": round(self.seconds, 4),
            "summary": self.summary(),
            "steps": [s.to_json() for s in self.steps],
            "cache_imports": [c.to_json() for c in self.cache_imports],
            "cache_exports": [c.to_json() for c in self.cache_exports],
            "warnings": list(self.warnings),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> BuildReport:
        return cls(
            image=obj.get("image"),
            steps=[StepRecord.from_json(s) for s in obj.get("steps") or ()],
            seconds=float(obj.get("seconds", 0.0)),
            cache_imports=[CacheOutcome.from_json(c) for c in obj.get("cache_imports") or ()],
            cache_exports=[CacheOutcome.from_json(c) for c in obj.get("cache_exports") or ()],
            warnings=[dict(w) for w in obj.get("warnings") or ()],
            dry_run=bool(obj.get("dry_run", False)),
        )


def warnings_summary(report: BuildReport) -> str:
    """The count of check warnings the build output ends with ("" when there were none)."""
    n = len(report.warnings)
    return f"{n} warning{'s' if n != 1 else ''} found (build checks, see above)" if n else ""


def summary_line(report: BuildReport) -> str:
    """The line the progress view ends with: steps, hits, misses, hit ratio, time saved."""
    s = report.summary()
    return (
        f"{s['steps']} steps: {s['hits']} cached, {s['misses']} built "
        f"({s['hit_ratio']:.0%} hits), {report.seconds:.2f}s, about "
        f"{s['seconds_saved']:.2f}s saved by the cache"
    )
