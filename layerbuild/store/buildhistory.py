"""The build history on disk: one JSON file per build under ``builds/`` (docs/history.md).

A record is written whole or not at all: into a private file named after its writer's pid,
then renamed over ``<id>.json`` (no fsync: a power cut may lose the newest record, never tear
one; a file that does not decode is skipped). A build writes it when it starts, status
"running", and again when it ends; a "running" record whose process is gone is a build that
was killed. Retention keeps the newest `max_builds` records within `max_bytes`, applied after
each build and by `prune`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerbuild.errors import LayerbuildError
from layerbuild.store.crashsafe import left_by_dead_processes, pid_alive

FORMAT = 1  # of the record files
MAX_BUILDS = 200
MAX_BYTES = 64 * 1024 * 1024
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
    """A record file as retention sees it."""

    id: str
    mtime: float
    size: int


def to_drop(files: Sequence[Kept], max_builds: int, max_bytes: int) -> list[str]:
    """The ids retention removes: beyond the newest `max_builds`, or once the newer ones
    hold `max_bytes` (the newest record is always kept)."""
    kept_bytes, drop = 0, []
    for n, kept in enumerate(sorted(files, key=lambda k: (k.mtime, k.id), reverse=True)):
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
    def __init__(
        self, directory: Path, max_builds: int = MAX_BUILDS, max_bytes: int = MAX_BYTES
    ) -> None:
        self.directory = directory
        self.max_builds = max_builds
        self.max_bytes = max_bytes

    def path(self, build_id: str) -> Path:
        return self.directory / f"{build_id}.json"

    def write(self, record: dict[str, Any]) -> None:
        """Replace the record of `record["id"]` in one rename."""
        self.directory.mkdir(exist_ok=True)
        tmp = self.directory / f"{_TMP}{os.getpid()}-{record['id']}"
        tmp.write_bytes(encode(record))
        os.replace(tmp, self.path(str(record["id"])))

    def read(self, build_id: str) -> dict[str, Any] | None:
        try:
            return decode(self.path(build_id).read_bytes())
        except FileNotFoundError:
            return None

    def records(self) -> list[dict[str, Any]]:
        """Every readable record, newest first (by start time)."""
        found = []
        for build_id in self._ids():
            record = self.read(build_id)
            if record is not None:
                found.append(record)
        return sorted(found, key=lambda r: float(r.get("started", 0.0)), reverse=True)

    def _ids(self) -> Iterator[str]:
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    yield entry.name[: -len(".json")]

    def remove(self, build_id: str) -> None:
        self.path(build_id).unlink(missing_ok=True)

    def retain(self) -> list[str]:
        """Apply the bounds (and drop what killed writers left); the ids removed."""
        files = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    st = entry.stat()
                    files.append(Kept(entry.name[: -len(".json")], st.st_mtime, st.st_size))
        dropped = to_drop(files, self.max_builds, self.max_bytes)
        for build_id in dropped:
            self.remove(build_id)
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
