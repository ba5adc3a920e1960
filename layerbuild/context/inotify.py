"""Linux inotify through libc: watches on directories and the events they queue.

Python's standard library has no inotify; the context watcher (context/watcher.py) needs only
three calls. The kernel queues an event while the system call that caused it is still running
(fsnotify), so once a write, rename or chmod has returned to its caller, its event can be read
here: reading the queue empty tells what changed until then.
"""

from __future__ import annotations

import ctypes
import os
import struct

from layerbuild.sandbox.linux import libc

IN_MODIFY = 0x0002
IN_ATTRIB = 0x0004
IN_CLOSE_WRITE = 0x0008
IN_MOVED_FROM = 0x0040
IN_MOVED_TO = 0x0080
IN_CREATE = 0x0100
IN_DELETE = 0x0200
IN_DELETE_SELF = 0x0400
IN_MOVE_SELF = 0x0800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

# everything that changes what an lstat of an entry, or the list of a directory's entries, shows
CHANGES = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
    | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
)  # fmt: skip

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (of the NUL-padded name that follows)


class Inotify:
    """One inotify instance (non-blocking): `add` a directory, `read` what it queued."""

    def __init__(self) -> None:
        fd = libc().inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd

    def add(self, path: str) -> int:
        """Watch the directory `path` (never through a symlink); its watch descriptor."""
        mask = CHANGES | IN_ONLYDIR | IN_DONT_FOLLOW
        wd: int = libc().inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch: {os.strerror(err)}", path)
        return wd

    def read(self) -> list[tuple[int, int, bytes]]:
        """The events queued so far, (wd, mask, name): [] when there are none."""
        events: list[tuple[int, int, bytes]] = []
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return events
            events.extend(parse_events(data))

    def close(self) -> None:
        os.close(self.fd)


def parse_events(data: bytes) -> list[tuple[int, int, bytes]]:
    """The `struct inotify_event` records of one read."""
    events = []
    at = 0
    while at + _EVENT.size <= len(data):
        wd, mask, _cookie, size = _EVENT.unpack_from(data, at)
        at += _EVENT.size
        events.append((wd, mask, data[at : at + size].rstrip(b"\0")))
        at += size
    return events
