"""What keeps the store's writes whole across a crash, and finds what a crash left.

A writer fsyncs the directory of a rename it needs durable (`fsync_dir`); private work files and
directories carry their writer's pid in their name (``<prefix><pid>-<random>``), so that the
next process over the same store removes those whose writer is dead (`left_by_dead_processes`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable (POSIX needs the directory itself fsynced)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def left_by_dead_processes(directory: Path, prefix: str) -> list[Path]:
    """Entries of `directory` named `<prefix><pid>-...` whose process is gone: the private
    work directories a killed build left behind."""
    found: list[Path] = []
    for entry in os.scandir(directory):
        if not entry.name.startswith(prefix):
            continue
        pid_text = entry.name[len(prefix) :].partition("-")[0]
        if pid_text.isdigit() and pid_alive(int(pid_text)):
            continue
        found.append(Path(entry.path))
    return found


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (possibly owned by another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scratch_dir(parent: Path | None, prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A private work directory under `parent` (the store's tmp), named after this process:
    one a killed process left (its pid gone) is removed first. None: one outside the store
    (a dry run writes nothing there)."""
    if parent is None:
        return tempfile.TemporaryDirectory(prefix=f"layerbuild-{prefix}")
    parent.mkdir(parents=True, exist_ok=True)
    for stale in left_by_dead_processes(parent, prefix):
        shutil.rmtree(stale, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-", dir=parent)
