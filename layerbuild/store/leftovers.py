"""What processes that are gone left in the store: temp files and uncommitted snapshots (and
delta snapshots whose base is gone, which nothing can use).

Each writer names its private temp files and directories after its pid (`content.py`,
`snapshots.py`, `layers.py`, the build's scratch in `executor.py`, GC roots in `locking.py`,
`index.json` temps in `refs.py`), so one whose pid is dead is abandoned. Cache files are
written through mkstemp, without a pid: those count as abandoned once idle for as long as
an ingest may be (an hour). Finding is side-effect free; fsck reports, then removes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from layerbuild.store.content import STALE_INGEST_SECONDS
from layerbuild.store.crashsafe import left_by_dead_processes
from layerbuild.store.snapnames import broken

CACHE_TEMP_PREFIX = ".tmp-"  # cacheindex.py's temp files
# (directory under the root, name prefix before the pid)
_SNAPSHOT_TEMPS = (("snapshots", "tmp-"), ("snapshots/layers", "tmp-"))
_TEMP_PLACES = (
    ("ingest", ""),
    ("tmp", "build-"),
    ("roots", ""),
    (".", ".index.json."),
    (".", ".oci-layout."),
)
_CACHE_TEMP_DIRS = ("cache/builds", "cache/reports")


@dataclass(frozen=True)
class Leftover:
    kind: str  # "orphan snapshot" or "orphan temp"
    path: Path
    what: str


def _dead_pid_entries(root: Path, places: Sequence[tuple[str, str]]) -> Iterator[Path]:
    for directory, prefix in places:
        path = root / directory
        if path.is_dir():
            yield from sorted(left_by_dead_processes(path, prefix))


def _stale_cache_temps(root: Path, now: float) -> Iterator[Path]:
    dirs = [root / d for d in _CACHE_TEMP_DIRS]
    keys = root / "cache" / "keys"
    if keys.is_dir():
        dirs += sorted(p for p in keys.iterdir() if p.is_dir())
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob(CACHE_TEMP_PREFIX + "*")):
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime > STALE_INGEST_SECONDS:
                    yield path


def _broken_deltas(root: Path) -> list[Leftover]:
    """Delta snapshots (store/snapnames.py) whose base is gone: never read, never needed."""
    layers = root / "snapshots" / "layers"
    if not layers.is_dir():
        return []
    what = "delta snapshot whose base snapshot is gone"
    return [Leftover("orphan snapshot", layers / n, what) for n in broken(os.listdir(layers))]


def find_leftovers(root: Path, *, now: float | None = None) -> list[Leftover]:
    """Every leftover under the store `root`; `now` for the age of pid-less temp files."""
    found = [
        Leftover("orphan snapshot", path, "uncommitted snapshot of a process that is gone")
        for path in _dead_pid_entries(root, _SNAPSHOT_TEMPS)
    ]
    found += _broken_deltas(root)
    for path in _dead_pid_entries(root, _TEMP_PLACES):
        thing = "directory" if path.is_dir() else "file"
        found.append(Leftover("orphan temp", path, f"temp {thing} of a process that is gone"))
    hours = STALE_INGEST_SECONDS // 3600
    for path in _stale_cache_temps(root, time.time() if now is None else now):
        what = f"temp file not written for over {hours} hour"
        found.append(Leftover("orphan temp", path, what))
    return found
