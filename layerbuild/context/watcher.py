"""ContextWatcher: `layerbuild watch CONTEXT` keeps a build context's listing current, so that
a build of an unchanged context need not walk it (docs/cache.md, "Watching the context").

The watcher walks the context as a build's walkers do (`listwalk`), with the build's
`.dockerignore` rules, after putting an inotify watch on each directory the walk can list,
each one before it is read: a change made after a directory's watch was put is queued as an
event, and one made before it is seen by the walk. Any event at all marks the listing stale,
until the watcher has walked again (once the context has been quiet for QUIET_S).

When a build asks (context/watchclient.py), the watcher first reads every event queued so
far: the kernel queues an event before the call that changed a file returns, so the answer
covers every change made before the build asked. It answers with the listing only when there
was none since its walk, the rules are the build's, and the regular files with other hard
links (which can change through a path outside the context, unseen here) still show the same
lstat; otherwise "stale", and the build walks on its own. What inotify cannot see is written
up in docs/cache.md: writes through a shared memory mapping, and network file systems (the
watcher refuses to start on those).
"""

from __future__ import annotations

import marshal
import os
import select
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from layerbuild.context import inotify
from layerbuild.context.fingerprint import pack_lstat
from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.listing import ContextListing, Share
from layerbuild.context.listwalk import plan_units, walk_units
from layerbuild.context.select import load_ignore
from layerbuild.context.statcache import RACY_MARGIN_NS
from layerbuild.context.watchclient import PROTOCOL
from layerbuild.errors import ContextError

QUIET_S = 0.3  # walk again once no event came for this long
RETRY_S = 10.0  # after a walk that failed (a directory that cannot be read, no watches left)
_REMOTE = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre")

Key = tuple[tuple[str, bool], ...]  # the rules a listing was walked with


def pattern_key(rules: IgnoreRules | None) -> Key:
    return tuple((p.text, p.exclusion) for p in rules.patterns) if rules is not None else ()


class ContextWatcher:
    """The watcher of one context, for one set of `.dockerignore` rules at a time."""

    def __init__(self, root: str, dockerfile: str | None, log: Callable[[str], None]) -> None:
        self.root = os.path.realpath(root)
        self.dockerfile = dockerfile
        self.log = log
        self.inotify = inotify.Inotify()
        self.listing: list[Share] | None = None  # one share: the whole listing
        self.reply = b""  # the "clean" answer, marshalled once per walk
        self.key: Key | None = None
        self.linked: list[tuple[str, bytes]] = []  # hard-linked files and their packed lstat
        self.stale = True
        self.last_event = 0.0
        # a walk runs on a thread of its own (`serve`), so that builds asking meanwhile are
        # answered "stale" at once; the events it must see are left queued for it until it ends
        self.walking = False
        # a listing with entries changed within the stat cache's racy margin of its walk gets
        # them hashed again by every build: the watcher walks again once they are older
        self.rewalk_at: float | None = None

    def walk(self) -> None:
        """Watch and walk the context; the listing is kept if nothing changed meanwhile."""
        self.inotify.read()  # before this walk: what they changed, it sees
        self.stale, self.listing = False, None
        try:
            named = Path(self.dockerfile) if self.dockerfile else None
            rules = load_ignore(Path(self.root), named)
            taken_ns = time.time_ns()
            self.linked = self._watch(rules)
            units = plan_units(self.root, rules)
            shares = walk_units(self.root, rules, units, 0, 1, taken_ns)
        except (ContextError, OSError) as exc:
            self.log(f"cannot watch {self.root} (trying again in {RETRY_S:.0f} s): {exc}")
            self.stale = True
            self.last_event = time.monotonic() + RETRY_S - QUIET_S
            return
        self.drain()
        if not self.stale:
            joined = ContextListing.join(shares)
            whole = (joined.taken_ns, joined.count, joined.names, joined.records,
                     joined.ctimes.tobytes())  # fmt: skip
            self.listing, self.key = [whole], pattern_key(rules)
            self.reply = marshal.dumps(("clean", self.listing))
            newest = max(joined.ctimes, default=0)
            young = newest >= taken_ns - RACY_MARGIN_NS
            self.rewalk_at = time.monotonic() + RACY_MARGIN_NS / 1e9 if young else None
            again = " (some changed within the racy margin: walking again in 2 s)"
            self.log(f"listing ready: {joined.count} entries{again if young else ''}")

    def drain(self) -> None:
        """Read the queued events: any of them (or a lost one, IN_Q_OVERFLOW) makes the
        listing stale."""
        if self.inotify.read():
            self.stale, self.listing = True, None
            self.last_event = time.monotonic()

    def answer(self, request: bytes) -> bytes:
        """The reply to one build: ("clean", shares) or ("stale",)."""
        if self.walking:
            self.log("answered a build: stale, it walks the context itself (walking)")
            return marshal.dumps(("stale",))
        self.drain()
        try:
            version, root, patterns = marshal.loads(request)
            key = tuple((str(text), bool(exclusion)) for text, exclusion in patterns)
        except (EOFError, ValueError, TypeError):
            return marshal.dumps(("stale",))
        listing = self.listing
        if (
            version != PROTOCOL
            or root != self.root
            or listing is None
            or key != self.key
            or not self._links_unchanged()
        ):
            self.log("answered a build: stale, it walks the context itself")
            return marshal.dumps(("stale",))
        self.log(f"answered a build: the listing of {listing[0][1]} entries")
        return self.reply

    def _links_unchanged(self) -> bool:
        """Whether the hard-linked files show the lstat they had; if not, the listing is
        stale and walked again (a change through a link outside the context queues no event)."""
        for path, record in self.linked:
            try:
                same = pack_lstat(os.lstat(path)) == record
            except OSError:
                same = False
            if not same:
                self.stale, self.listing = True, None
                self.last_event = time.monotonic()
                return False
        return True

    def _watch(self, rules: IgnoreRules | None) -> list[tuple[str, bytes]]:
        """A watch on every directory a walk with `rules` can list, each put before the
        directory is read; the regular files with more than one link, and their lstat."""
        linked: list[tuple[str, bytes]] = []
        pending = [("", self.root)]
        while pending:
            rel, path = pending.pop()
            self.inotify.add(path)
            with os.scandir(path) as entries:
                for entry in entries:
                    child = f"{rel}/{entry.name}" if rel else entry.name
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        hidden = rules is not None and rules.matches(child)
                        if not hidden or rules is not None and rules.may_include_below(child):
                            pending.append((child, entry.path))
                    elif stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                        linked.append((entry.path, pack_lstat(st)))
        return linked


def serve(watcher: ContextWatcher, path: str, stop: Callable[[], bool]) -> None:
    """Answer builds on the socket at `path` until `stop()`; walk again once the context is
    quiet after a change."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as server:
        server.bind(path)
        os.chmod(path, 0o600)
        server.listen(16)
        while not stop():
            now = time.monotonic()
            quiet = now - watcher.last_event >= QUIET_S
            young = watcher.rewalk_at is not None and now >= watcher.rewalk_at
            if (watcher.stale and quiet or young) and not watcher.walking:
                watcher.rewalk_at = None
                _start_walk(watcher)
            # while a walk runs, its events stay queued: the walk reads them when it ends
            fds = [server.fileno()] + ([] if watcher.walking else [watcher.inotify.fd])
            ready, _, _ = select.select(fds, [], [], 0.1 if watcher.walking else QUIET_S)
            if server.fileno() in ready:
                _answer_one(watcher, server)
            if watcher.inotify.fd in ready and not watcher.walking:
                watcher.drain()


def _start_walk(watcher: ContextWatcher) -> None:
    def walk() -> None:
        try:
            watcher.walk()
        finally:
            watcher.walking = False

    watcher.walking = True
    threading.Thread(target=walk, name="walk", daemon=True).start()


def _answer_one(watcher: ContextWatcher, server: socket.socket) -> None:
    conn, _ = server.accept()
    with conn:
        conn.settimeout(2)
        try:
            chunks = []
            while chunk := conn.recv(1 << 16):
                chunks.append(chunk)
            conn.sendall(watcher.answer(b"".join(chunks)))
        except OSError:
            pass  # the build gave up waiting: it walks on its own


def remote_file_system(path: str) -> str | None:
    """The type of the network file system `path` is on, if it is on one (inotify sees only
    the changes made through this machine's kernel)."""
    best, kind = "", ""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                if " - " not in line or len(fields) < 5:
                    continue
                point = fields[4].replace("\\040", " ")
                fstype = line.split(" - ", 1)[1].split()[0]
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, fstype
    except OSError:
        return None
    remote = kind in _REMOTE or kind.startswith("fuse.sshfs")
    return kind if remote else None
