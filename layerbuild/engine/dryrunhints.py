"""What `build --dry-run` says under a missed COPY (pure): the files that changed, and which of
them no step reads but a copy of the whole context, so that a `.dockerignore` line would have
kept the steps from that COPY on cached.

A context file is "read" by a step when the step names it: a COPY/ADD source from the context
that is not the whole context (a path, a directory above it, or a glob matching it or a
directory above it) or the source of a `RUN --mount=type=bind` from the context.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from layerbuild.dockerfile import instructions as ins

MAX_FILES = 10  # changed files listed under a missed COPY, then a count
MAX_HINTS = 3  # .dockerignore hints under a missed COPY


def files_lines(changed: Sequence[str]) -> list[str]:
    """The changed files (`/path changed|added|removed`), up to MAX_FILES, then a count."""
    lines = list(changed[:MAX_FILES])
    if len(changed) > MAX_FILES:
        lines.append(f"and {len(changed) - MAX_FILES} more")
    return lines


def whole_context(sources: Iterable[str]) -> bool:
    """Whether a COPY's sources include the whole context (`.`, `./`, `/`)."""
    return any(_normal(s) == "" for s in sources)


def context_readers(steps: Iterable[ins.Instruction]) -> list[str]:
    """The context paths and globs the steps name, whole-context copies left out."""
    out: list[str] = []
    for instr in steps:
        if isinstance(instr, ins.Copy | ins.Add) and instr.from_stage is None:
            heredocs = {f"<<{h.name}" for h in instr.heredocs}
            out += [s for s in instr.sources if s not in heredocs and _normal(s) != ""]
        elif isinstance(instr, ins.Run):
            out += [source for m in instr.mounts if (source := _bind_source(m)) is not None]
    return out


def is_read(path: str, readers: Iterable[str]) -> bool:
    """Whether context file `path` (relative) is named by one of `readers`."""
    parents = [path] + ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 1)]
    for reader in readers:
        pattern = _normal(reader)
        if pattern == "" or any(fnmatch.fnmatchcase(p, pattern) for p in parents):
            return True
    return False


def ignore_hint(path: str, copy: ins.Instruction, first: int, last: int) -> str:
    """The hint for a changed context file only a whole-context COPY reads."""
    text = " ".join(copy.original.split())
    steps = f"step {first}" if first == last else f"steps {first}\u2013{last}"
    return (
        f"{path} changed; no step reads it except `{text}` at line {copy.span.start_line}; "
        f"add it to .dockerignore to keep {steps} cached"
    )


def _normal(source: str) -> str:
    """A context source as a relative path (`./a/` -> `a`, `.` -> ``)."""
    parts = [p for p in source.split("/") if p not in ("", ".")]
    return "/".join(parts)


def _bind_source(mount: str) -> str | None:
    """The context path a `--mount` flag binds (`type=bind` without `from=`), else None."""
    fields = dict(f.partition("=")[::2] for f in mount.split(","))
    if fields.get("type", "bind") != "bind" or "from" in fields:
        return None
    return fields.get("source", fields.get("src", "."))
