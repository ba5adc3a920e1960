"""A tmpfs of a test's own: a small file system to fill up (a full disk) without touching the
machine's.

Name: tmpfs(where, size) -> the mount point, unmounted when the block ends.
Scope: tests of full disks (tests/integration/test_store_faults.py, test_host_errors.py) and
       bench/chaos.py's disk mode.
Depends: root (mount -t tmpfs).
"""

from __future__ import annotations

import contextlib
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
