"""Timing a build and finding the processes a stopped build must not leave behind.

Name: timed_build, sleeps.
Scope: tests/integration: the parallel stages (test_parallel_stages.py) and the platforms of a
       multi-platform build run at once (platform/test_parallel_platforms.py).
Depends: the CLI (tests/support/cli.py), /proc.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.cli import Layerbuild


def timed_build(lb: Layerbuild, ctx: Path, *args: str) -> float:
    """The build's own wall time, as it prints it (`built ... in 2.6s`): the interpreter's
    start-up, which a loaded machine makes vary by a second, left out. No network: slirp4netns
    is set up per RUN and is not what is measured."""
    plain = lb.build(ctx, "--no-cache", "--network", "none", *args).stderr
    done = next(line for line in plain.splitlines() if line.startswith("built "))
    return float(done.rsplit(" in ", 1)[1].rstrip("s"))


def sleeps(seconds: str) -> set[int]:
    """Pids of `sleep SECONDS` processes on the machine (those of a build's steps included:
    their PID namespace is below ours)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if cmdline.split(b"\0")[:2] == [b"sleep", seconds.encode()]:
            found.add(int(entry))
    return found
