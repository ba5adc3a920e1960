"""Local archives for ``ADD archive.tar.gz /dest/``: detection and re-rooted Changes.

Docker extracts a source when it is a tar, possibly compressed with gzip, bzip2, xz or zstd,
and copies it as a plain file otherwise: detection is by magic number and then by reading the
first tar header (``isArchivePath`` in moby's builder), so a gzip file that is not a tar is
copied, not extracted.

Entries are placed under ``dest`` as ``archive.Untar`` places them: absolute names are taken
relative to ``dest``, while a name, hard link target or relative symlink target that climbs
above ``dest`` with '..' is refused (moby's ``breakoutError``). Whiteout names are not
interpreted: Docker extracts ``.wh.*`` entries of an ADDed archive as ordinary files.
"""

from __future__ import annotations

import bz2
import io
import lzma
import posixpath
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import zstandard

from layerbuild.errors import UnsafeArchiveError
from layerbuild.image.changes import Change, ChangeKind, normalize_path
from layerbuild.image.decompress import detect_compression, open_layer
from layerbuild.image.tarreader import Spool, TarMembers, member_change, member_kind, spooled

# Enough compressed bytes to decode a first tar header even from a bzip2 stream, whose first
# block (up to 900 kB of input) must be complete before any output appears.
SNIFF_SIZE = 1 << 20
_BLOCK = 512
_PARENT_MODE = 0o755  # Docker creates missing parents of archive entries 0755, owned by root


def _decompress_head(head: bytes, compression: str) -> bytes:
    """As many decompressed bytes (up to one tar block) as ``head`` yields; b'' when corrupt."""
    try:
        if compression == "gzip":
            return zlib.decompressobj(31).decompress(head, _BLOCK)
        if compression == "zstd":
            return zstandard.ZstdDecompressor().decompressobj().decompress(head)[:_BLOCK]
        if compression == "bzip2":
            return bz2.BZ2Decompressor().decompress(head, _BLOCK)
        if compression == "xz":
            return lzma.LZMADecompressor().decompress(head, _BLOCK)
    except (zlib.error, zstandard.ZstdError, OSError, EOFError, lzma.LZMAError):
        return b""
    return head[:_BLOCK]


def is_tar_header(block: bytes) -> bool:
    """Whether ``block`` is a tar header as Go's tar.Reader accepts a first one: a full block,
    not all zeros (that is an empty archive), with a valid checksum (signed or unsigned)."""
    if len(block) < _BLOCK or not block[:_BLOCK].strip(b"\0"):
        return False
    field = block[148:156].replace(b"\0", b" ").strip()
    try:
        stored = int(field, 8)
    except ValueError:
        return False
    summed = block[:148] + b"        " + block[156:_BLOCK]
    unsigned = sum(summed)
    signed = sum(b - 256 if b > 127 else b for b in summed)
    return stored in (unsigned, signed)


def is_archive(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a (compressed) tar that ADD extracts.

    Pass the first ``SNIFF_SIZE`` bytes (or the whole file if smaller).
    """
    return is_tar_header(_decompress_head(head, detect_compression(head)))


class _Prepended(io.RawIOBase):
    """A reader that yields ``head`` and then the rest of ``fileobj`` (for sniffed streams)."""

    def __init__(self, head: bytes, fileobj: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._fileobj = fileobj

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._head[: len(view)] if self._head else self._fileobj.read(len(view))
        self._head = self._head[len(data) :]
        view[: len(data)] = data
        return len(data)


def _refuse_climb(rel: str, what: str, dest: str) -> str:
    """``rel`` (relative to dest) cleaned; UnsafeArchiveError when '..' takes it above dest."""
    cleaned = posixpath.normpath(rel) if rel else "."
    if cleaned == ".." or cleaned.startswith("../"):
        raise UnsafeArchiveError(
            f"archive {what} points outside the destination {'/' + dest!r}",
            hint="the archive is malformed or hostile; extract it yourself and COPY the files",
        )
    return cleaned


def _entry_path(dest: str, name: str) -> str:
    # Docker cleans the name first, so a rooted name cannot climb ('/../x' is '/x')
    cleaned = posixpath.normpath(name) if name else "."
    rel = _refuse_climb(cleaned.lstrip("/"), f"entry {name!r}", dest)
    return normalize_path(posixpath.join(dest, rel))


def _hardlink_target(dest: str, name: str, target: str) -> str:
    # Go joins the raw target to the destination before cleaning: '/../x' climbs out
    rel = _refuse_climb(target.lstrip("/"), f"hard link {name!r} -> {target!r}", dest)
    return normalize_path(posixpath.join(dest, rel))


def _symlink_target(dest: str, path: str, name: str, target: str) -> str:
    """Docker refuses a symlink whose target, joined to the link's directory, leaves dest; the
    target is kept verbatim (absolute ones are resolved inside the container later)."""
    link_dir = posixpath.relpath("/" + posixpath.dirname(path), "/" + dest)
    _refuse_climb(
        posixpath.join(link_dir, target.lstrip("/")), f"symlink {name!r} -> {target!r}", dest
    )
    return target


def _parents(path: str, dest: str, seen: set[str]) -> Iterator[Change]:
    """DIR changes for the missing directories between dest and path, outermost first."""
    missing: list[str] = []
    parent = posixpath.dirname(path)
    while parent != dest and parent and parent not in seen:
        missing.append(parent)
        seen.add(parent)
        parent = posixpath.dirname(parent)
    for directory in reversed(missing):
        yield Change(path=directory, kind=ChangeKind.DIR, mode=_PARENT_MODE)


def archive_changes(
    fileobj: BinaryIO, dest: str, *, spool: Spool | None = None, implied_parents: bool = True
) -> Iterator[Change]:
    """The entries of a (compressed) tar as Changes re-rooted under layer path ``dest``.

    Missing parent directories below ``dest`` are added (0755, root, mtime 0) unless
    ``implied_parents`` is False (a caller that knows the image creates only those it lacks);
    ``dest`` itself is the caller's. Content openers are valid until the iterator advances
    unless ``spool`` makes durable copies. Raises UnsafeArchiveError for entries that would
    escape ``dest``.
    """
    dest = normalize_path(dest)
    head = fileobj.read(8)
    raw = cast(BinaryIO, io.BufferedReader(_Prepended(head, fileobj)))
    stream = open_layer(raw, detect_compression(head))
    seen: set[str] = set()
    for info, opener in TarMembers(stream, what="archive"):
        kind = member_kind(info)
        if kind is None:
            continue
        path = _entry_path(dest, info.name)
        if path == dest:
            continue  # the archive's root entry ('./'): dest belongs to the caller
        if implied_parents:
            yield from _parents(path, dest, seen)
        seen.add(path)
        link = ""
        if kind is ChangeKind.HARDLINK:
            link = _hardlink_target(dest, info.name, info.linkname)
        elif kind is ChangeKind.SYMLINK:
            link = _symlink_target(dest, path, info.name, info.linkname)
        content = spooled(spool, opener, info.size) if kind is ChangeKind.FILE else None
        yield member_change(info, kind, path, link, content)
