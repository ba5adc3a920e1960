"""Functions run in a forked child process, their result sent back on a pipe.

Python threads share one interpreter lock, so work that is mostly Python (writing a snapshot
tree of 20k hard links, walking a context) slows down whatever else the build does at the time
instead of using the other core. A forked child has its own.

The child starts from a copy of the parent at the moment of the fork, with only the calling
thread, so the function must not need a lock another thread may hold (SQLite connections,
logging) and should only read the data it was given and make system calls. Its result must
be marshal-able. The child never returns into the caller's code: it leaves with os._exit.

`fork_call` + `collect` (or `stop`) are the primitives, light enough to run before the builder
is imported (context/prefetch.py); `call_in_child` wraps them in a Future with a waiter thread.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from layerbuild.errors import ChildFailed

if TYPE_CHECKING:
    from concurrent.futures import Future


def fork_call(fn: Callable[[], Any]) -> tuple[int, int]:
    """Fork a child that runs `fn` and writes its marshalled result: (pid, read end of its
    pipe). OSError when the fork itself fails."""
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
    return pid, r


def collect(pid: int, fd: int) -> Any:
    """The child's result: reads its pipe to the end (closing it) and reaps it."""
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
        code = _reap(pid)
    return _result(pid, code, chunks, cancelled=False)


def stop(pid: int, fd: int) -> None:
    """Kill a child not collected, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.close(fd)
    _reap(pid)


def call_in_child(fn: Callable[[], Any], cancel: threading.Event | None = None) -> Future[Any]:
    """Fork, run `fn` in the child, and resolve the Future with its return value (or
    ChildFailed). Setting `cancel` kills the child. OSError when the fork itself fails."""
    from concurrent.futures import Future

    pid, fd = fork_call(fn)
    future: Future[Any] = Future()
    waiter = threading.Thread(
        target=_wait, args=(pid, fd, future, cancel), name=f"child-{pid}", daemon=True
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
    cancelled = False
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while True:
            if cancel is not None and cancel.is_set() and not cancelled:
                os.kill(pid, signal.SIGKILL)  # not reaped yet: the pid is still this child's
                cancelled = True
            if not poller.poll(100):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
        code = _reap(pid)
    try:
        future.set_result(_result(pid, code, chunks, cancelled=cancelled))
    except ChildFailed as e:
        future.set_exception(e)


def _result(pid: int, code: int, chunks: list[bytes], *, cancelled: bool) -> Any:
    if cancelled or code != 0:
        raise ChildFailed(f"child {pid} {'was cancelled' if cancelled else f'ended with {code}'}")
    try:
        return marshal.loads(b"".join(chunks))
    except (ValueError, EOFError, TypeError) as e:
        raise ChildFailed(f"child {pid} sent no result: {e}") from None


def _reap(pid: int) -> int:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return -1
    return os.waitstatus_to_exitcode(status)
