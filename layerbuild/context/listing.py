"""ContextListing: every visible entry of the build context with its lstat, in walk order.

The quick key of a COPY (`FileSteps.quick_key`) needs names and lstat of what it selects. The
listing has them for all of the context at once, walked by child processes while the parent
is still importing and planning (`context/prefetch.py`), so a COPY of a directory or file
named literally is summed up from a slice of it without a walk of its own.

A share of the listing travels from its walker (marshalled by layerbuild/childcall.py) as
(taken_ns, count, NUL-joined relative paths, packed lstat records, native int64 ctimes).
Shares are joined in walk order.

The fingerprint of a path (version 1), fed to sha256::

    "layerbuild.listing.v1\\n" u32le(len(path)) path
    u32le(number of entries) the entries' paths joined by NUL
    per entry: u64le(dev, ino) u32le(mode, uid, gid) i64le(size, mtime_ns, ctime_ns)

over the path and everything below it: equal to what ``select(root, path)`` would return
with the same lstat, when the path is no symlink (it is then reached without following one:
the walk never follows symlinks).
"""

from __future__ import annotations

import hashlib
import stat
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from layerbuild.context.fingerprint import ENTRY_SIZE, pack_lstats

if TYPE_CHECKING:
    from layerbuild.context.lstat import Stat

_VERSION = b"layerbuild.listing.v1\n"
_MODE = struct.Struct("<I")
_MODE_AT = 16  # offset of st_mode in a packed record, after dev and ino
_U32 = struct.Struct("<I")


# one walker's share: (taken_ns, count, NUL-joined paths, packed lstat records, ctimes)
Share = tuple[int, int, bytes, bytes, bytes]


def share_of(taken_ns: int, paths: Sequence[str], stats: Sequence[Stat]) -> Share:
    """One walker's share, as it travels (marshal-able)."""
    ctimes = array("q", [st.st_ctime_ns for st in stats]).tobytes()
    joined = "\0".join(paths).encode("utf-8", "surrogateescape")
    return (taken_ns, len(paths), joined, pack_lstats(stats), ctimes)


@dataclass
class ContextListing:
    """The context's paths and packed lstat records as the walkers left them: a blob each, not
    an object per file."""

    taken_ns: int  # wall clock before the first lstat of any share
    names: bytes  # every path, NUL-joined, as the walkers encoded them
    count: int
    records: bytes
    ctimes: array[int]
    # `names` decoded: only when a path below the root is looked up (a COPY of the whole
    # context, the common case, hashes `names` as they came)
    _paths: list[str] | None = field(default=None, repr=False)

    @property
    def paths(self) -> list[str]:
        if self._paths is None:
            self._paths = self.names.decode("utf-8", "surrogateescape").split("\0")
        return self._paths

    @classmethod
    def join(cls, shares: Sequence[Share]) -> ContextListing:
        """The listing of the shares, in order. ValueError for data no walker wrote."""
        taken: list[int] = []
        names: list[bytes] = []
        records = bytearray()
        ctimes = array("q")
        total = 0
        for taken_ns, count, joined, recs, times in shares:
            # count - 1 separators; a share of one path may be b"" (the root's "")
            if count and joined.count(b"\0") != count - 1 or len(recs) != count * ENTRY_SIZE:
                raise ValueError("a context listing share is truncated")
            if not count and joined:
                raise ValueError("a context listing share is truncated")
            taken.append(taken_ns)
            if count:
                names.append(joined)
            total += count
            records += recs
            ctimes.frombytes(times)
        if not total or not names[0].startswith(b"\0") and names[0] != b"":
            raise ValueError("a context listing does not start at the root")
        if len(ctimes) != total:
            raise ValueError("a context listing share is truncated")
        return cls(min(taken), b"\0".join(names), total, bytes(records), ctimes)

    def fingerprint(self, path: str) -> tuple[bytes, int] | None:
        """(sha256 of the encoding above, newest ctime in ns) of `path` and all below it.
        None when the listing cannot stand in for a walk of it: not there (absent, hidden by
        .dockerignore, or reached through a symlink), or a symlink itself (COPY follows it)."""
        if not path:  # the root, always first: everything, its names as they came
            return self._digest(path, 0, self.count, self.names)
        try:
            start = self.paths.index(path)  # a scan in C: cheaper than building a dict
        except ValueError:
            return None
        mode = _MODE.unpack_from(self.records, start * ENTRY_SIZE + _MODE_AT)[0]
        if stat.S_ISLNK(mode):
            return None
        end = start + 1
        if stat.S_ISDIR(mode):
            prefix, paths = path + "/", self.paths
            while end < len(paths) and paths[end].startswith(prefix):
                end += 1
        joined = "\0".join(self.paths[start:end]).encode("utf-8", "surrogateescape")
        return self._digest(path, start, end, joined)

    def _digest(self, path: str, start: int, end: int, joined: bytes) -> tuple[bytes, int]:
        name = path.encode("utf-8", "surrogateescape")
        h = hashlib.sha256(_VERSION + _U32.pack(len(name)) + name)
        h.update(_U32.pack(end - start) + joined)
        h.update(self.records[start * ENTRY_SIZE : end * ENTRY_SIZE])
        return h.digest(), max(self.ctimes[start:end])
