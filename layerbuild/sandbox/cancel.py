"""Stopping the RUN steps of a build whose other stage failed: stages run on threads of their
own (engine/scheduler.py), and a step blocked reading its sandbox's output only returns once
that sandbox is gone.

`spawn.execute` enters each step's outer process here while it runs and leaves before it reaps
it, so `cancel` only ever signals a child that is not reaped yet (its pid cannot have been
reused). SIGKILL of the outer process takes PID 1 with it (PDEATHSIG) and the step's PID
namespace with that; its mounts lived only in its own mount namespace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading


class Cancel:
    """The sandboxes of one build, killed together when it stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids: set[int] = set()
        self.cancelled = False

    def enter(self, pid: int) -> bool:
        """Track the running step `pid`; False when the build stops already (the caller
        kills it)."""
        with self._lock:
            if self.cancelled:
                return False
            self._pids.add(pid)
            return True

    def leave(self, pid: int) -> None:
        """`pid` is about to be reaped: no longer ours to kill."""
        with self._lock:
            self._pids.discard(pid)

    def cancel(self) -> None:
        """Kill every step running now, and refuse those that would start."""
        with self._lock:
            self.cancelled = True
            for pid in self._pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
