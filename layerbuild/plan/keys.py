"""Cache keys: a digest of named inputs, kept together with the inputs.

A step's key is sha256 over the canonical JSON of its inputs (the parent's key, the instruction
as expanded, the platform, what it reads). Keeping the inputs beside the digest — BuildKit's
`cachedigest` does the same since 2025 — lets a miss explain itself: `explain(old, new)` names
the first input that differs instead of leaving the user to guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from layerbuild.digest import Digest, canonical_json, sha256_bytes

Inputs = tuple[tuple[str, str], ...]

# Every step key names it (engine/stepcache.py `chain`). 2: records link to their parents'
# results; keys of format 1 (no such link) are never looked up again, so their steps run anew.
# Bump it with any change to how a key is made, and regenerate tests/golden/keys/
# (docs/design/cache-keys.md): under the same format, a new rule could meet records of the old
# one (an input dropped makes two different steps one key).
KEY_FORMAT = "2"


@dataclass(frozen=True, slots=True)
class CacheKey:
    """A step's cache key and the inputs it was computed from (to explain misses)."""

    digest: Digest
    inputs: Inputs

    @classmethod
    def of(cls, inputs: Iterable[tuple[str, str]]) -> CacheKey:
        items = tuple((str(k), str(v)) for k, v in inputs)
        return cls(sha256_bytes(canonical_json([list(i) for i in items])), items)

    def to_json(self) -> dict[str, object]:
        return {"digest": str(self.digest), "inputs": [list(i) for i in self.inputs]}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> CacheKey:
        raw = obj.get("inputs")
        inputs = tuple((str(k), str(v)) for k, v in raw) if isinstance(raw, list) else ()
        return cls(Digest(str(obj["digest"])), inputs)


# how each input reads in a miss explanation
_LABELS = {
    "parent": "parent step changed",
    "format": "cache format changed (records made by an older layerbuild are not trusted)",
    "base": "base image changed",
    "instruction": "instruction changed",
    "platform": "platform changed",
    "compression": "layer compression changed",
    "epoch": "SOURCE_DATE_EPOCH changed",
    "env": "environment changed",
    "from": "source stage or image changed",
    "user": "user changed",
    "workdir": "working directory changed",
}


def explain(
    old: Inputs | None,
    new: Inputs,
    *,
    files_old: Mapping[str, str] | None = None,
    files_new: Mapping[str, str] | None = None,
) -> str:
    """Why `new` missed where `old` (the same step in the previous build) hit or was recorded.

    Names the first differing input; for a COPY whose sources changed, the first file that
    differs (added, removed or changed) when per-file summaries are given.
    """
    if old is None:
        return "no previous build of this step"
    before = dict(old)
    for name, value in new:
        if before.get(name) == value:
            continue
        if name == "sources":
            return _files_reason(files_old or {}, files_new or {})
        if name.startswith("arg:"):
            return f"build arg {name[4:]} changed"
        if name == "env":
            return _env_reason(before.get(name), value)
        if name == "parent" and before.get(name) is not None:
            return "parent step missed"
        if name == "instruction":
            return f"instruction changed (was: {_short(before.get(name, ''))})"
        return _LABELS.get(name, f"{name} changed")
    removed = [k for k in before if k not in dict(new)]
    if removed:
        return f"{removed[0]} changed"
    return "not in the cache (pruned, or built with --no-cache)"


def _files_reason(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    changed = changed_files(old, new)
    return changed[0] if changed else "source files changed"


def changed_files(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Every file that differs between two per-file summaries of a COPY, in path order:
    `/path added`, `/path removed` or `/path changed`."""
    # the paths that differ first, then their order: a one-file change in a 100,000-file COPY
    # sorted every path of both summaries to name one
    differ = [path for path, summary in new.items() if old.get(path) != summary]
    differ += [path for path in old if path not in new]
    out = []
    for path in sorted(differ):
        if path not in old:
            out.append(f"/{path} added")
        elif path not in new:
            out.append(f"/{path} removed")
        else:
            out.append(f"/{path} changed")
    return out


def _env_reason(old: str | None, new: str) -> str:
    """A RUN's environment differs while its parent step did not (the parent is compared
    first): ENV lines are part of the parent chain, so the variable came from a build arg."""
    before, after = _env_pairs(old), _env_pairs(new)
    if before is None or after is None:
        return "environment changed"
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            return f"build arg {name} changed"
    return "environment changed"


def _env_pairs(text: str | None) -> dict[str, str] | None:
    try:
        pairs = json.loads(text) if text is not None else None
        return {str(k): str(v) for k, v in pairs} if isinstance(pairs, list) else None
    except (ValueError, TypeError):
        return None


def _short(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= 60 else line[:57] + "..."
