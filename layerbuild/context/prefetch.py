"""ListingPrefetch: the build context walked by child processes while the build starts up.

A no-change rebuild costs one lstat per context entry (the quick COPY keys) on top of
importing and planning the build, each about as long as the other. Forked before the builder
is imported, walkers (one per share of the root's entries, `select.walk_context`) do the
first on the other core while the parent does the second; each sends its share of the
`ContextListing` back on a pipe.

Nothing depends on the walkers for correctness: a failed, killed or late walker only means
COPY keys are computed from a walk of their own, as without a prefetch.
"""

from __future__ import annotations

import os
import select as io_select
import signal
import time
from pathlib import Path

from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.listing import ContextListing, encode_share
from layerbuild.context.select import walk_context


class ListingPrefetch:
    """The walkers of one context; `get` the listing, `close` when the build is done."""

    def __init__(self, root: Path, ignore: IgnoreRules | None) -> None:
        self.root = os.path.realpath(root)
        self.ignore = ignore
        self._children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
        self._listing: ContextListing | None = None
        self._done = False

    @classmethod
    def start(cls, root: Path, ignore: IgnoreRules | None, walkers: int = 2) -> ListingPrefetch:
        """Fork the walkers. Call before any thread starts: a child only walks and writes,
        with modules already imported, and leaves with os._exit."""
        prefetch = cls(root, ignore)
        for share in range(walkers):
            try:
                r, w = os.pipe()
            except OSError:
                break
            try:
                pid = os.fork()
            except OSError:
                os.close(r)
                os.close(w)
                break
            if pid == 0:  # pragma: no cover - measured through the CLI tests' parents
                os.close(r)
                _walker(prefetch.root, ignore, share, walkers, w)
            os.close(w)
            prefetch._children.append((pid, r))
        if len(prefetch._children) < walkers:
            prefetch.close()  # a listing with a share missing is no listing
        return prefetch

    def covers(self, root: Path, ignore: IgnoreRules | None) -> bool:
        """Whether the listing is of this root, walked with these rules."""
        return self.root == os.path.realpath(root) and _patterns(self.ignore) == _patterns(ignore)

    def get(self, *, wait: bool) -> ContextListing | None:
        """The listing; without `wait`, None unless every walker has finished (or is
        writing its share). None too when a walker failed."""
        if self._done:
            return self._listing
        if not self._children:
            return None
        fds = [r for _, r in self._children]
        if not wait:
            poller = io_select.poll()
            for fd in fds:
                poller.register(fd, io_select.POLLIN | io_select.POLLHUP)
            if len(poller.poll(0)) < len(fds):
                return None
        shares = [_read_all(fd) for fd in fds]
        failed = any(_reap(pid) != 0 for pid, _ in self._children)
        self._close_fds()
        self._done = True
        if not failed:
            try:
                self._listing = ContextListing.join(shares)
            except (ValueError, EOFError, TypeError):
                self._listing = None
        return self._listing

    def close(self) -> None:
        """Stop walkers still running; the listing stays readable if it was got."""
        for pid, _ in self._children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap(pid)
        self._close_fds()
        self._done = True

    def _close_fds(self) -> None:
        for _, fd in self._children:
            os.close(fd)
        self._children = []


def _walker(root: str, ignore: IgnoreRules | None, share: int, walkers: int, fd: int) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it with the build
        taken = time.time_ns()
        data = encode_share(taken, *walk_context(Path(root), ignore, share, walkers))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        code = 0
    except BaseException:  # whatever it was, the parent falls back to its own walk
        pass
    finally:
        os._exit(code)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _reap(pid: int) -> int:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return -1
    return os.waitstatus_to_exitcode(status)


def _patterns(ignore: IgnoreRules | None) -> tuple[object, ...]:
    return ignore.patterns if ignore is not None else ()
