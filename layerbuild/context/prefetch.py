"""ListingPrefetch: the build context walked by child processes while the build starts up.

A no-change rebuild costs one lstat per context entry (the quick COPY keys) on top of
importing and planning the build, each about as long as the other. Forked before the builder
is imported (layerbuild/childcall.py: its primitives only, so that nothing heavy is imported
before the fork), walkers (each dealt every n-th unit of `listwalk.plan_units`, walked by
`listwalk.walk_units`) do the first on the other core while the parent does the second; each
sends back a share of the `ContextListing` per unit.

Nothing depends on the walkers for correctness: a failed, killed or late walker only means
COPY keys are computed from a walk of their own, as without a prefetch.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select as io_select
import threading
import time
from pathlib import Path

from layerbuild.childcall import collect, fork_call, stop
from layerbuild.context.ignore import IgnoreRules, Pattern
from layerbuild.context.listing import ContextListing, Share
from layerbuild.context.listwalk import Unit, plan_units, walk_units
from layerbuild.context.watchclient import ask as ask_watcher
from layerbuild.errors import ChildFailed, ContextError


class ListingPrefetch:
    """The walkers of one context; `get` the listing, `close` when the build is done."""

    def __init__(self, root: Path, ignore: IgnoreRules | None) -> None:
        self.root = os.path.realpath(root)
        self.ignore = ignore
        self._children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
        self._units: list[Unit] = []
        self._listing: ContextListing | None = None
        self._done = False
        # stages run in threads: two COPYs may ask at once, and a pipe is read (and closed) once
        self._lock = threading.Lock()

    @classmethod
    def start(cls, root: Path, ignore: IgnoreRules | None, walkers: int = 2) -> ListingPrefetch:
        """Fork the walkers: early, while the process has imported little and runs no
        other thread."""
        prefetch = cls(root, ignore)
        watched = ask_watcher(prefetch.root, [(p.text, p.exclusion) for p in _patterns(ignore)])
        if watched is not None:  # `layerbuild watch` vouches that nothing changed
            with contextlib.suppress(ValueError):
                prefetch._listing, prefetch._done = ContextListing.join(watched), True
                return prefetch
        try:
            prefetch._units = plan_units(prefetch.root, ignore)
        except ContextError:
            return prefetch  # no listing: the build walks, and reports what is wrong
        for share in range(walkers):
            walk = functools.partial(_walk, prefetch.root, ignore, prefetch._units, share, walkers)
            try:
                prefetch._children.append(fork_call(walk))
            except OSError:
                prefetch.close()  # a listing with a share missing is no listing
                break
        return prefetch

    def covers(self, root: Path, ignore: IgnoreRules | None) -> bool:
        """Whether the listing is of this root, walked with these rules."""
        return self.root == os.path.realpath(root) and _patterns(self.ignore) == _patterns(ignore)

    def get(self, *, wait: bool) -> ContextListing | None:
        """The listing; without `wait`, None unless every walker has finished (or is
        writing its share). None too when a walker failed."""
        with self._lock:
            return self._get(wait)

    def _get(self, wait: bool) -> ContextListing | None:
        if self._done:
            return self._listing
        if not wait:
            poller = io_select.poll()
            for _, fd in self._children:
                poller.register(fd, io_select.POLLIN | io_select.POLLHUP)
            if len(poller.poll(0)) < len(self._children):
                return None
        dealt: list[list[Share]] = []
        try:
            for pid, fd in self._children:
                dealt.append(collect(pid, fd))
            self._listing = ContextListing.join(_in_unit_order(dealt, len(self._units)))
        except (ChildFailed, OSError, ValueError, TypeError):
            self._listing = None
        finally:
            for pid, fd in self._children[len(dealt) + 1 :]:
                stop(pid, fd)  # after a failed share: the rest are not read
            self._children = []
            self._done = True
        return self._listing

    def close(self) -> None:
        """Stop walkers still running; the listing stays readable if it was got."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        for pid, fd in self._children:
            stop(pid, fd)
        self._children = []
        self._done = True


def _walk(
    root: str, ignore: IgnoreRules | None, units: list[Unit], share: int, walkers: int
) -> list[Share]:
    return walk_units(root, ignore, units, share, walkers, time.time_ns())


def _in_unit_order(dealt: list[list[Share]], units: int) -> list[Share]:
    """The walkers' shares back in unit order: walker w walked units w, w + n, w + 2n...
    ValueError when one sent back another number of shares than it was dealt."""
    walkers = len(dealt)
    for walker, shares in enumerate(dealt):
        if not isinstance(shares, list) or len(shares) != len(range(walker, units, walkers)):
            raise ValueError("a context walker sent back another number of shares")
    return [dealt[unit % walkers][unit // walkers] for unit in range(units)]


def _patterns(ignore: IgnoreRules | None) -> tuple[Pattern, ...]:
    return ignore.patterns if ignore is not None else ()
