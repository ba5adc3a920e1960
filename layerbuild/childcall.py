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


def call_in_child(fn: Callable[[], Any], cancel: threading.Event | None = None) -> Future[Any]:
    """Fork, run `fn` in the child, and resolve the Future with its return value (or
    ChildFailed). Setting `cancel` kills the child. OSError when the fork itself fails."""
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
    future: Future[Any] = Future()
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


def _wait(pid: int, fd: int, future: Future[Any], cancel: threading.Event | None) -> None:
    chunks: list[bytes] = []
    killed = False
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while True:
            if cancel is not None and cancel.is_set() and not killed:
                os.kill(pid, signal.SIGKILL)
                killed = True
            if not poller.poll(100):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if killed or code != 0:
        future.set_exception(ChildFailed(f"child {pid} {'was cancelled' if killed else code}"))
        return
    try:
        future.set_result(marshal.loads(b"".join(chunks)))
    except (ValueError, EOFError, TypeError) as e:
        future.set_exception(ChildFailed(f"child {pid} sent no result: {e}"))
