"""ListingPrefetch: the build context walked by child processes while the build starts up.

A no-change rebuild costs one lstat per context entry (the quick COPY keys) on top of
importing and planning the build, each about as long as the other. Forked before the builder
is imported (layerbuild/childcall.py: its primitives only, so that nothing heavy is imported
before the fork), walkers (one per share of the root's entries, `listwalk.walk_share`) do the
first on the other core while the parent does the second; each sends its share of the
`ContextListing` back.

Nothing depends on the walkers for correctness: a failed, killed or late walker only means
COPY keys are computed from a walk of their own, as without a prefetch.
"""

from __future__ import annotations

import functools
import os
import select as io_select
import time
from pathlib import Path

from layerbuild.childcall import collect, fork_call, stop
from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.listing import ContextListing, Share
from layerbuild.context.listwalk import walk_share
from layerbuild.errors import ChildFailed


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
        """Fork the walkers: early, while the process has imported little and runs no
        other thread."""
        prefetch = cls(root, ignore)
        for share in range(walkers):
            walk = functools.partial(_walk, prefetch.root, ignore, share, walkers)
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
        if self._done:
            return self._listing
        if not wait:
            poller = io_select.poll()
            for _, fd in self._children:
                poller.register(fd, io_select.POLLIN | io_select.POLLHUP)
            if len(poller.poll(0)) < len(self._children):
                return None
        shares: list[Share] = []
        try:
            for pid, fd in self._children:
                shares.append(collect(pid, fd))
            self._listing = ContextListing.join(shares)
        except (ChildFailed, OSError, ValueError, TypeError):
            self._listing = None
        finally:
            for pid, fd in self._children[len(shares) + 1 :]:
                stop(pid, fd)  # after a failed share: the rest are not read
            self._children = []
            self._done = True
        return self._listing

    def close(self) -> None:
        """Stop walkers still running; the listing stays readable if it was got."""
        for pid, fd in self._children:
            stop(pid, fd)
        self._children = []
        self._done = True


def _walk(root: str, ignore: IgnoreRules | None, share: int, walkers: int) -> Share:
    return walk_share(root, ignore, share, walkers, time.time_ns())


def _patterns(ignore: IgnoreRules | None) -> tuple[object, ...]:
    return ignore.patterns if ignore is not None else ()
