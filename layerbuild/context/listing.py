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

from layerbuild.context.fingerprint import ENTRY_SIZE, ENTRY_STRUCT, pack_lstats
from layerbuild.context.lstat import Lstat
from layerbuild.context.select import SourceFile

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
            self._paths = self._decoded()
        return self._paths

    def _decoded(self) -> list[str]:
        return self.names.decode("utf-8", "surrogateescape").split("\0")

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
        span = self._span(path)
        if span is None:
            return None
        start, end = span
        joined = "\0".join(self.paths[start:end]).encode("utf-8", "surrogateescape")
        return self._digest(path, start, end, joined)

    def selection(self, root: str, path: str) -> list[SourceFile] | None:
        """What ``select(root, path)`` returns for a path `fingerprint` vouches for, made from
        the listing rather than by walking again (a COPY whose quick key missed); `root` is
        the context's real path. None when it needs a walk: `path` is not listed or is a
        symlink, a device lies below it (the listing keeps no device numbers), or files on
        two file systems share an inode number. The listing
        keeps no link counts either: an entry's st_nlink is 2 when another entry of the
        selection is the same file, else 1, which is all a COPY asks of it (which of its
        entries are hard links of one another)."""
        span = (0, self.count) if not path else self._span(path)
        if span is None:
            return None
        start, end = span
        records = memoryview(self.records)[start * ENTRY_SIZE : end * ENTRY_SIZE]  # no copy
        rows = ENTRY_STRUCT.iter_unpack(records)
        # names decoded for this selection only, unless they are already: the listing lives
        # as long as the build, and the names need not once the step's Changes are made
        names = self._paths if self._paths is not None else self._decoded()
        base, cut = root.rstrip("/"), len(path) + 1 if path else 0
        new, lstat, source = tuple.__new__, Lstat, SourceFile
        out: list[SourceFile] = []
        first: dict[int, int] = {}  # inode number -> index of the first file with it
        pairs: list[tuple[int, int]] = []
        for at, (name, (dev, ino, mode, uid, gid, size, mtime, ctime)) in enumerate(
            zip(names[start:end], rows, strict=True)
        ):
            kind = mode & 0o170000
            if kind == 0o100000:
                seen = first.setdefault(ino, at)
                if seen != at:
                    if out[seen].st.st_dev != dev:
                        return None  # one number on two file systems: a walk tells them apart
                    pairs.append((seen, at))
            elif kind == 0o020000 or kind == 0o060000:
                return None  # a character or block device
            st = new(lstat, (mode, ino, dev, 1, uid, gid, size, mtime, ctime, 0))
            out.append(source(name[cut:], f"{base}/{name}", st, path))
        for pair in pairs:
            for at in pair:
                out[at].st = out[at].st._replace(st_nlink=2)
        top = out[0]
        out[0] = source("", f"{base}/{path}" if path else root, top.st, path)
        return out

    def _span(self, path: str) -> tuple[int, int] | None:
        """Where `path` and everything below it lie in the listing; None when it is not
        there or is a symlink."""
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
        return start, end

    def _digest(self, path: str, start: int, end: int, joined: bytes) -> tuple[bytes, int]:
        name = path.encode("utf-8", "surrogateescape")
        h = hashlib.sha256(_VERSION + _U32.pack(len(name)) + name)
        h.update(_U32.pack(end - start) + joined)
        h.update(self.records[start * ENTRY_SIZE : end * ENTRY_SIZE])
        return h.digest(), max(self.ctimes[start:end])

