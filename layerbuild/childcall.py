"""call_in_child: run a function in a forked child process; its result comes back as a Future.

Python threads share one interpreter lock, so work that is mostly Python (writing a snapshot
tree of 20k hard links) slows down whatever else the build does at the time (the tar writer
packing the same layer) instead of using the other core. A forked child has its own.

The child starts from a copy of the parent at the moment of the fork, with only the calling
thread, so the function must not need a lock another thread may hold (SQLite connections,
logging) and should only read the data it was given and make system calls. Its result must
be marshal-able. The child never returns into the caller's code: it leaves with os._exit.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class ChildFailed(Exception):
    """The child raised, was killed, or sent something that is not its result."""


class ChildFuture(Future[Any]):
    """The child's result to come; `kill` ends the child now, if it still runs."""

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid
        self.reaped = False
        self.lock = threading.Lock()  # no kill once reaped: its pid may be someone else's

    def kill(self) -> None:
        with self.lock:
            if not self.reaped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)


def call_in_child(fn: Callable[[], Any], cancel: threading.Event | None = None) -> ChildFuture:
    """Fork, run `fn` in the child, and resolve the Future with its return value (or
    ChildFailed). Setting `cancel` kills the child (checked every 0.1 s; `kill` at once).
    OSError when the fork itself fails."""
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        raise
    if pid == 0:  # pragma: no cover - runs in the child; tested through its result
        os.close(r)
        _child(fn, w)
    os.close(w)
    future = ChildFuture(pid)
    waiter = threading.Thread(
        target=_wait, args=(pid, r, future, cancel), name=f"child-{pid}", daemon=True
    )
    waiter.start()
    return future


def _child(fn: Callable[[], Any], fd: int) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it with the build
        view = memoryview(marshal.dumps(fn()))
        while view:
            view = view[os.write(fd, view) :]
        code = 0
    except BaseException:  # the parent sees a failed child, whatever the cause
        pass
    finally:
        os._exit(code)


def _wait(pid: int, fd: int, future: ChildFuture, cancel: threading.Event | None) -> None:
    chunks: list[bytes] = []
    cancelled = False
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while True:
            if cancel is not None and cancel.is_set() and not cancelled:
                future.kill()
                cancelled = True
            if not poller.poll(100):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
        with future.lock:
            _, status = os.waitpid(pid, 0)
            future.reaped = True
    code = os.waitstatus_to_exitcode(status)
    if cancelled or code != 0:
        why = "was cancelled" if cancelled else f"ended with {code}"
        future.set_exception(ChildFailed(f"child {pid} {why}"))
        return
    try:
        future.set_result(marshal.loads(b"".join(chunks)))
    except (ValueError, EOFError, TypeError) as e:
        future.set_exception(ChildFailed(f"child {pid} sent no result: {e}"))
