"""A tmpfs of a test's own: a small file system to fill up (a full disk) without touching the
machine's.

Name: tmpfs(where, size) -> the mount point, unmounted when the block ends;
      fill(disk, leave) -> a filler file that leaves about `leave` bytes free (delete it to
      free them again).
Scope: tests of full disks (tests/integration/test_store_faults.py, test_host_errors.py) and
       bench/chaos.py's disk mode.
Depends: root (mount -t tmpfs).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of `size` (mount's syntax: "64m") on `where` (made if missing)."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", where], check=True)
    try:
        yield where
    finally:
        # lazily: a process of a failed test may still hold a file open there
        subprocess.run(["umount", "-l", where], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Take all of `disk` but about `leave` bytes (a filler left by an earlier call goes first);
    delete the returned file to free the space again."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    st = os.statvfs(disk)
    size = max(0, st.f_bavail * st.f_frsize - leave)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if size:
            os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
    return filler
