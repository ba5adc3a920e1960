"""selection_fingerprint: what a COPY selected, summed up from names and lstat alone.

A no-change rebuild must not cost a walk *plus* building every Change, probing the stat cache
for each file and digesting the lot (`context/hashing.py`). When the entries a COPY selects
have the same names, real paths, inodes and lstat fields as when its sources digest was last
computed, the digest is the same: ctime moves on every write, chmod, chown, xattr change and
rename, and no user-space call sets it back (see `context/statcache.py`). So the fingerprint of
a selection, recorded with the sources digest it led to, stands in for that digest — provided
no selected entry is *racy* (mtime or ctime within the stat cache's margin of the moment the
selection was taken), which the caller checks with ``newest_ns`` before recording.

Encoding (version 1), fed to sha256::

    "layerbuild.selection.v1\\n"
    per source, in the order given:
        bytes(source) u32le(number of entries)
        bytes(the entries' rel paths joined by NUL)
        bytes(the real paths of the matches, rel == "", joined by NUL)
        per entry: u64le(dev, ino) u32le(mode, uid, gid) i64le(size, mtime_ns, ctime_ns)

with ``bytes(b)`` = ``u32le(len(b)) + b`` (names as UTF-8 with surrogateescape).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from layerbuild.context.lstat import Stat
from layerbuild.context.select import SourceFile

_VERSION = b"layerbuild.selection.v1\n"
# one entry's lstat fields, packed (the encoding above; context/listwalk.py packs with it too)
ENTRY_STRUCT = struct.Struct("<2Q3I3q")
ENTRY_SIZE = ENTRY_STRUCT.size
_U32 = struct.Struct("<I")


def selection_fingerprint(groups: Sequence[tuple[str, Sequence[SourceFile]]]) -> tuple[bytes, int]:
    """(sha256 of the encoding above, newest ctime among the entries in ns).

    Only ctime counts for the racy check: a write always sets it to the clock, while mtime
    may be set to anything (`touch -d`)."""
    h = hashlib.sha256(_VERSION)
    newest = 0
    u32 = _U32.pack
    for source, files in groups:
        h.update(_bytes(source) + u32(len(files)))
        # names joined by NUL (which no file name holds); a match's real path stands for the
        # real paths of everything walked below it
        h.update(_bytes("\0".join(f.rel for f in files)))
        h.update(_bytes("\0".join(f.real for f in files if not f.rel)))
        stats = [f.st for f in files]
        h.update(pack_lstats(stats))
        if stats:
            newest = max(newest, max(st.st_ctime_ns for st in stats))
    return h.digest(), newest


def pack_lstat(st: Stat) -> bytes:
    """One entry's lstat fields in the encoding above (`pack_lstats` inlines it per entry,
    and so does the context walker's hot loop, context/listwalk.py)."""
    return ENTRY_STRUCT.pack(
        st.st_dev,
        st.st_ino,
        st.st_mode,
        st.st_uid,
        st.st_gid,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


def pack_lstats(stats: Sequence[Stat]) -> bytes:
    """The lstat fields a fingerprint covers, packed per entry (the encoding above)."""
    pack = ENTRY_STRUCT.pack
    return b"".join(
        [
            pack(
                st.st_dev,
                st.st_ino,
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
            )
            for st in stats
        ]
    )


def _bytes(text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    return _U32.pack(len(data)) + data
