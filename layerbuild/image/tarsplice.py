"""Splicing a layer tar: file entries that are byte for byte entries of a layer packed before
are copied from that layer's tar stream instead of being read from their files again.

A file entry's bytes are its header, its data and the padding. A plain file's header is a
function of its path, mode, owner, size and (clamped) mtime (tarheader.py, as of
HEADER_FORMAT); the data is the file's content. So an entry of the new layer equals an entry
of the previous one when those fields are equal and so are the content digests: the new one
from the COPY's key (what the stat cache vouched for, or what was hashed for the key), the old
one from the `EntryIndex` recorded while the old layer was packed (each digest taken from the
very read that packed those bytes). Such an entry costs no header encoding and no file: its
header and data are read from the old stream. The tar writer asks `Splice` about every entry
in layer order; old entries lie in the same order, so the old stream is read once, forward,
never held in memory, and what is not spliced is skipped.

The spliced data is handed to the tar writer in the pieces a file would give it, so the
stream and its chunking (chunkpipe.py's content-defined cuts) are exactly a cold pack's and
the blob is byte-identical. Reading the old blob through to its end lets the store check its
digest: a damaged old blob fails the splice (`SpliceSourceError`), and the caller packs from
the files instead.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from layerbuild.digest import Digest
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.oldstream import OldStream, SpliceSourceError
from layerbuild.image.tarheader import BLOCK, header_mtime

__all__ = ["EntryIndex", "EntryLog", "Reused", "Splice", "SpliceSourceError"]

_META = 5  # per entry in EntryIndex.meta: mode, uid, gid, size, header mtime
_META_ROW = struct.Struct(f"={_META}q")
_SHA256 = 32


@dataclass(frozen=True, slots=True)
class EntryIndex:
    """Where the non-empty plain file entries (no xattrs) of a layer tar lie, in layer order:
    the offset of each one's header in the uncompressed stream, the header's length (its data
    follows), what the header encodes besides the path (`meta`: mode, uid, gid, size, mtime as
    written) and the sha256 of its data (raw, _SHA256 bytes each). Arrays, not an object per
    entry: a 100,000-file layer's index is a few MB and loads in milliseconds."""

    paths: list[str]
    offsets: array[int]  # 'Q'
    header_sizes: array[int]  # 'L'
    meta: array[int]  # 'q', _META per entry
    sha256s: bytes

    def __post_init__(self) -> None:
        if not (isinstance(self.paths, list) and isinstance(self.sha256s, bytes)):
            raise TypeError("an entry index holds a list of paths and the digests' bytes")
        n = len(self.paths)
        sizes = (len(self.offsets), len(self.header_sizes), len(self.meta), len(self.sha256s))
        if sizes != (n, n, n * _META, n * _SHA256):
            raise ValueError("entry index arrays of different lengths")


class EntryLog:
    """Builds the EntryIndex of a tar as the tar writer writes it (``entry`` per entry)."""

    def __init__(self) -> None:
        self.offset = 0  # of the next entry in the uncompressed stream
        self._paths: list[str] = []
        self._offsets = array("Q")
        self._header_sizes = array("L")
        self._meta = array("q")
        self._sha256s = bytearray()

    def entry(
        self, change: Change, header: bytes, digest: Digest | None, epoch: int | None
    ) -> None:
        """`change` was written with `header` (SOURCE_DATE_EPOCH `epoch`); `digest`: its data's,
        when it was hashed or vouched for by the read that packed it (an entry without one
        is never spliced)."""
        size = change.size if change.kind is ChangeKind.FILE else 0
        if size > 0 and digest is not None and not change.xattrs and digest[:7] == "sha256:":
            mtime = header_mtime(change.mtime, epoch)
            try:
                row = _META_ROW.pack(change.mode & 0o7777, change.uid, change.gid, size, mtime)
            except struct.error:
                row = b""  # a number past 64 bits: such an entry is never spliced
            if row:
                self._paths.append(change.path)
                self._offsets.append(self.offset)
                self._header_sizes.append(len(header))
                self._meta.frombytes(row)
                self._sha256s += bytes.fromhex(digest[7:])
        self.offset += len(header) + size + (-size % BLOCK)

    def spliced(self, path: str, reused: Reused) -> None:
        """`entry` of an entry copied from the previous layer: its row is the one `reused`
        was matched on (`Splice._find` compared every field `entry` would record)."""
        self.spliced_row(path, len(reused.header), reused.size, reused.row, reused.raw)

    def spliced_row(self, path: str, header_size: int, size: int, row: bytes, raw: bytes) -> None:
        """`spliced`, of the entry's parts: its header's length, its size, its row and sha256."""
        self._paths.append(path)
        self._offsets.append(self.offset)
        self._header_sizes.append(header_size)
        self._meta.frombytes(row)
        self._sha256s += raw
        self.offset += header_size + size + (-size % BLOCK)

    def spliced_rows(self, index: EntryIndex, first: int, last: int, shift: int) -> None:
        """The rows `first` to `last` (excluded) of the previous layer's `index`, copied as one
        run: the same entries, `shift` bytes further in this stream. `advance` past them."""
        self._paths += index.paths[first:last]
        self._offsets.extend([offset + shift for offset in index.offsets[first:last]])
        self._header_sizes += index.header_sizes[first:last]
        self._meta += index.meta[first * _META : last * _META]
        self._sha256s += index.sha256s[first * _SHA256 : last * _SHA256]

    def advance(self, size: int) -> None:
        """`size` bytes of entries were written whose rows (if any) went in by spliced_rows."""
        self.offset += size

    def index(self) -> EntryIndex:
        return EntryIndex(
            self._paths, self._offsets, self._header_sizes, self._meta, bytes(self._sha256s)
        )


class Reused:
    """An entry from the previous layer: its header, and its data as ``FileSource.chunks``
    would give it."""

    __slots__ = ("_old", "digest", "header", "raw", "row", "size")

    def __init__(
        self, old: OldStream, size: int, digest: Digest, header: bytes, row: bytes, raw: bytes
    ) -> None:
        self._old = old
        self.size = size
        self.digest = digest
        self.header = header
        self.row = row  # the entry's EntryIndex meta, packed; `raw`: its data's sha256
        self.raw = raw

    def chunks(self, size: int, *, settled: bool = False) -> Generator[bytes, None, None]:
        left = self.size
        while left > 0:
            data = self._old.read(min(size, left))
            left -= len(data)
            yield data


class Splice:
    """What the tar writer asks, per file entry, whether the previous layer holds it.

    `known`: the content digest of each new file the step's key vouches for, by layer path.
    Counts what it spliced and what had to be read from files (`spliced`, `written`,
    `read_bytes`). The tar writer copies runs of such entries in one piece (splicerun.py)."""

    def __init__(self, index: EntryIndex, old: BinaryIO, known: Mapping[str, Digest]) -> None:
        self.index = index
        self._where = {path: i for i, path in enumerate(index.paths)}
        # the rows as tuples and the digests as one hex string, made in C in one go: a new
        # entry is compared with them without packing or parsing anything of its own
        self._rows = list(_META_ROW.iter_unpack(memoryview(index.meta).cast("B")))
        self._hexes = index.sha256s.hex()
        self.old = OldStream(old)
        self.known = known
        self.spliced = 0
        self.written = 0
        self.read_bytes = 0

    def match(self, change: Change, epoch: int | None) -> int:
        """Where the previous layer holds the non-empty file entry of `change` (SOURCE_DATE_EPOCH
        `epoch`) byte for byte: its index row, or -1. The hot path of a spliced pack."""
        path = change.path
        i = self._where.get(path)
        digest = self.known.get(path)
        # only a file read in pieces is spliced: its data reaches the writer in the same pieces
        if i is None or digest is None or change.xattrs or not hasattr(change.content, "chunks"):
            return -1
        mtime = change.mtime
        if epoch is not None and mtime > epoch:
            mtime = epoch  # tarheader.header_mtime
        row = (change.mode & 0o7777, change.uid, change.gid, change.size, mtime)
        if self._rows[i] != row or digest[:7] != "sha256:":
            return -1
        at = i * 2 * _SHA256
        return i if self._hexes[at : at + 2 * _SHA256] == digest[7:] else -1

    def count(self, change: Change, spliced: bool) -> None:
        """`change`, a non-empty file, was spliced or is read from its file."""
        if spliced:
            self.spliced += 1
        else:
            self.written += 1
            self.read_bytes += change.size

    def reused(self, i: int, change: Change) -> Reused:
        """The entry at row `i` (matched to `change`), its header read, its data next."""
        index, old = self.index, self.old
        old.drop(index.offsets[i])
        header = old.read(index.header_sizes[i])
        return Reused(old, change.size, self.known[change.path], header, self.row(i), self.raw(i))

    def row(self, i: int) -> bytes:
        return _META_ROW.pack(*self._rows[i])

    def raw(self, i: int) -> bytes:
        return self.index.sha256s[i * _SHA256 : (i + 1) * _SHA256]

    def entry_end(self, i: int) -> int:
        """Where the entry at row `i` ends in the old stream (after its padding)."""
        size = self.index.meta[i * _META + 3]
        return self.index.offsets[i] + self.index.header_sizes[i] + size + (-size % BLOCK)

    def end_of(self, path: str) -> int | None:
        """Where the old entry of `path` ends, when the index has one (a file changed since:
        what follows it in the old stream is what follows it now)."""
        i = self._where.get(path)
        return None if i is None else self.entry_end(i)

    def finish(self) -> None:
        """The tar is written: read the previous layer to its end (see OldStream.drain)."""
        self.old.drain()

    def close(self) -> None:
        """Stop reading the previous layer (a pack that failed midway)."""
        self.old.close()
