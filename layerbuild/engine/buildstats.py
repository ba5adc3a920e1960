"""`builds stats`: each step's hit ratio over one Dockerfile's last builds, what invalidated it
most, and what to do about it (docs/history.md).

Pure: it reads history records (store/buildhistory.py) as dicts. A miss's cause is the input
its reason names (plan/keys.explain): a file (the first that changed, as the reason names it;
grouped by its top directory below the COPY's destination), a build arg, the base image, the
instruction. A miss because an earlier step missed, or because the step had never been built,
is counted apart: it has no cause of its own. A step is counted only in the builds where the
same instruction stood at its place.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_FILE = re.compile(r"^/(\S.*) (added|removed|changed)$")
_ARG = re.compile(r"^build arg (\S+) changed$")
_CASCADE = ("parent step missed", "parent step changed")
_FIRST = "no previous build of this step"


@dataclass
class StepStats:
    stage: str
    index: int
    line: int
    instruction: str
    builds: int = 0
    hits: int = 0
    cascaded: int = 0  # misses because an earlier step missed, or never built before
    causes: Counter[str] = field(default_factory=Counter)

    @property
    def misses(self) -> int:
        return self.builds - self.hits

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "index": self.index,
            "line": self.line,
            "instruction": self.instruction,
            "builds": self.builds,
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": round(self.hits / self.builds, 4) if self.builds else 0.0,
            "without_own_cause": self.cascaded,
            "causes": dict(self.causes.most_common()),
            "advice": advice(self),
        }


def destination(instruction: str) -> str:
    """A COPY/ADD's absolute destination directory as a layer path ("" when relative: it
    depends on WORKDIR, which the record does not keep)."""
    words = instruction.split()
    if not words or words[0].upper() not in ("COPY", "ADD"):
        return ""
    last = words[-1].strip('"]')
    return last.strip("/") if last.startswith("/") else ""


def in_context(path: str, dest: str, exists: Callable[[str], bool]) -> str:
    """A COPY's layer path as a path of its context: below an absolute `dest`, else the
    shortest tail of it that `exists` in the context (a relative destination depends on
    WORKDIR, which the record does not keep), else the path as it is."""
    if dest and path.startswith(dest + "/"):
        return path[len(dest) + 1 :]
    parts = path.split("/")
    for start in range(1, len(parts)):
        tail = "/".join(parts[start:])
        if exists(tail):
            return tail
    return path


def cause_of(
    reason: str, dest: str = "", exists: Callable[[str], bool] = lambda path: False
) -> str:
    """The input a miss reason names: `file:README.md`, `file:docs/` (a path of the
    context: `in_context`), `arg:NAME`, `base`, `instruction`, `cascade`, `first`, or the
    reason itself."""
    if reason in _CASCADE:
        return "cascade"
    if reason == _FIRST:
        return "first"
    match = _FILE.match(reason)
    if match:
        path = in_context(match.group(1), dest, exists)
        top, sep, _ = path.partition("/")
        return f"file:{top}/" if sep else f"file:{top}"
    match = _ARG.match(reason)
    if match:
        return f"arg:{match.group(1)}"
    if reason == "base image changed":
        return "base"
    if reason.startswith("instruction changed"):
        return "instruction"
    return reason or "unknown"


def step_stats(
    records: Sequence[dict[str, Any]], exists: Callable[[str], bool] = lambda path: False
) -> list[StepStats]:
    """Per step of the newest record, over `records` (newest first, one Dockerfile);
    `exists`: whether a path is in the build context (`in_context`)."""
    if not records:
        return []
    stats = {
        (s["stage"], s["index"]): StepStats(s["stage"], s["index"], s["line"], s["instruction"])
        for s in records[0].get("steps") or ()
    }
    for record in records:
        for step in record.get("steps") or ():
            found = stats.get((step.get("stage"), step.get("index")))
            if found is None or step.get("cache") not in ("hit", "miss"):
                continue
            if step.get("instruction") != found.instruction:  # the Dockerfile was edited
                continue
            found.builds += 1
            if step["cache"] == "hit":
                found.hits += 1
                continue
            reason, dest = str(step.get("reason", "")), destination(found.instruction)
            cause = cause_of(reason, dest, exists)
            if cause in ("cascade", "first"):
                found.cascaded += 1
            else:
                found.causes[cause] += 1
    return list(stats.values())


def advice(stats: StepStats) -> str:
    """The sentence `builds stats` prints under a step that its own inputs made miss ("")."""
    if not stats.causes:
        return ""
    top, count = stats.causes.most_common(1)[0]
    kind = top.partition(":")[0]
    if kind == "file":  # the files, most frequent first, as one group
        files = [(c, n) for c, n in stats.causes.most_common() if c.startswith("file:")][:3]
        names = " or ".join(c[5:] for c, _ in files)
        count = sum(n for _, n in files)
        fix = "add them to .dockerignore or copy the manifest first"
        if len(files) == 1:
            fix = "add it to .dockerignore, or copy it in a later step"
        because = f"because of {names}: {fix}"
    elif kind == "arg":
        because = (
            f"because build arg {top[4:]} changed: declare the ARG just before the step "
            "that needs it, or pass a value that changes less often"
        )
    elif top == "base":
        because = "because the base image changed: pin it by digest (FROM image@sha256:...)"
    elif top == "instruction":
        because = "because the instruction itself was edited"
    else:
        because = f"because {top}"
    times = "once" if count == 1 else f"{count} times"
    return (
        f"`{stats.instruction}` at line {stats.line} missed in {stats.misses} of the last "
        f"{stats.builds} builds, {times} {because}"
    )
