"""The build history on disk: one JSON file per build under ``builds/`` (docs/history.md).

A record is written whole or not at all: into a private file named after its writer's pid,
then renamed over ``<start>-<id>.json`` (no fsync: a power cut may lose the newest record,
never tear one; a file that does not decode is skipped). A build writes it when it starts,
status "running", after each step that ran, and when it ends; a "running" record whose
process is gone is a build that was killed. Retention keeps the newest `max_builds` records
within `max_bytes`, applied after each build and by `prune`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerbuild.errors import LayerbuildError
from layerbuild.store.crashsafe import left_by_dead_processes, pid_alive

FORMAT = 1  # of the record files
MAX_BUILDS = 200
MAX_BYTES = 64 * 1024 * 1024
BYTES_EVERY = 10  # about the builds between two checks of the byte bound (the count: each)
_TMP = ".tmp-"


def encode(record: dict[str, Any]) -> bytes:
    """A record's file: compact JSON on one line, its format first."""
    return json.dumps({"format": FORMAT, **record}, separators=(",", ":")).encode() + b"\n"


def decode(data: bytes) -> dict[str, Any] | None:
    """A record read back, or None when it is not one (a torn or foreign file)."""
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or "id" not in obj:
        return None
    return obj


@dataclass(frozen=True, slots=True)
class Kept:
    """A record file as retention sees it: `name` sorts in the order the builds started."""

    id: str
    name: str
    size: int


def to_drop(files: Sequence[Kept], max_builds: int, max_bytes: int) -> list[str]:
    """The ids retention removes: beyond the newest `max_builds`, or once the newer ones
    hold `max_bytes` (the newest record is always kept)."""
    kept_bytes, drop = 0, []
    for n, kept in enumerate(sorted(files, key=lambda k: k.name, reverse=True)):
        kept_bytes += kept.size
        if n > 0 and (n >= max_builds or kept_bytes > max_bytes):
            drop.append(kept.id)
    return drop


def status_of(record: dict[str, Any]) -> str:
    """The status to show: a "running" record of a process that is gone was killed."""
    status = str(record.get("status", ""))
    if status == "running" and not pid_alive(int(record.get("pid", 0))):
        return "killed"
    return status


class BuildHistory:
    """Records as ``<start in ms, hex>-<id>.json``: the names sort by start, so keeping the
    newest N needs no stat; the byte bound reads the sizes about every BYTES_EVERY-th build,
    and on `prune`. Ids are hex."""

    def __init__(
        self, directory: Path, max_builds: int = MAX_BUILDS, max_bytes: int = MAX_BYTES
    ) -> None:
        self.directory = directory
        self.max_builds = max_builds
        self.max_bytes = max_bytes

    def write(self, record: dict[str, Any]) -> None:
        """Replace the record of `record["id"]` in one rename."""
        self.directory.mkdir(exist_ok=True)
        build_id = str(record["id"])
        tmp = self.directory / f"{_TMP}{os.getpid()}-{build_id}"
        tmp.write_bytes(encode(record))
        name = f"{int(float(record.get('started', 0.0)) * 1000):012x}-{build_id}.json"
        os.replace(tmp, self.directory / name)

    def read(self, build_id: str) -> dict[str, Any] | None:
        name = self._names().get(build_id)
        return self._read(name) if name is not None else None

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            return decode((self.directory / name).read_bytes())
        except FileNotFoundError:
            return None

    def records(self) -> list[dict[str, Any]]:
        """Every readable record, newest first (by start time)."""
        found = []
        for name in sorted(self._names().values(), reverse=True):
            record = self._read(name)
            if record is not None:
                found.append(record)
        return found

    def _names(self) -> dict[str, str]:
        """Each record's id -> its file's name."""
        names = {}
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                stem, dash, build_id = entry.name.removesuffix(".json").partition("-")
                if entry.name.endswith(".json") and dash and not stem.startswith("."):
                    names[build_id] = entry.name
        return names

    def remove(self, build_id: str) -> None:
        name = self._names().get(build_id)
        if name is not None:
            (self.directory / name).unlink(missing_ok=True)

    def retain(self, *, full: bool = False) -> list[str]:
        """Apply the bounds; the ids removed. The count is kept at every call; the byte
        bound reads every record's size, so it is applied when `full` (`prune`) and else
        about one call in BYTES_EVERY: when the newest record's random id says so."""
        names = self._names()
        newest = max(names.items(), key=lambda item: item[1], default=("", ""))[0]
        sizes = full or int(newest[:2] or "ff", 16) < 256 // BYTES_EVERY
        if len(names) <= self.max_builds and not sizes:
            return []
        files = [
            Kept(build_id, name, (self.directory / name).stat().st_size if sizes else 0)
            for build_id, name in names.items()
        ]
        dropped = to_drop(files, self.max_builds, self.max_bytes)
        for build_id in dropped:
            (self.directory / names[build_id]).unlink(missing_ok=True)
        return dropped

    def clean(self) -> None:
        """Remove the private files of writers that died before their rename."""
        if self.directory.is_dir():
            for left in left_by_dead_processes(self.directory, _TMP):
                left.unlink(missing_ok=True)

    def resolve(self, ref: str, dockerfile: str | None) -> dict[str, Any]:
        """The record `ref` names: an id or a unique prefix of one, or `^N`, the Nth build
        before the latest of `dockerfile` (`^0` the latest), as buildx spells it."""
        found = self.find(ref, dockerfile)
        if found is None:
            raise LayerbuildError(
                f"no build {ref!r} in the history",
                hint="`layerbuild builds ls` lists the builds kept",
            )
        return found

    def find(self, ref: str, dockerfile: str | None) -> dict[str, Any] | None:
        """As `resolve`, None when an id names no build (an ambiguous prefix still fails)."""
        records = self.records()
        if ref.startswith("^") and ref[1:].isdigit():
            return _nth(records, int(ref[1:]), dockerfile, ref)
        matches = [r for r in records if str(r["id"]).startswith(ref)] if ref else []
        if len(matches) > 1:
            raise LayerbuildError(
                f"{ref!r} names {len(matches)} builds", hint="give more characters of the id"
            )
        return matches[0] if matches else None


def _nth(
    records: list[dict[str, Any]], n: int, dockerfile: str | None, ref: str
) -> dict[str, Any]:
    same = [r for r in records if dockerfile is None or r.get("dockerfile") == dockerfile]
    if n < len(same):
        return same[n]
    where = f" of {dockerfile}" if dockerfile else ""
    raise LayerbuildError(
        f"{ref}: the history holds {len(same)} build(s){where}",
        hint="pass -f to name the Dockerfile, or a build id from `layerbuild builds ls`",
    )
