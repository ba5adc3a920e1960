"""A layer tar (an uncompressed stream) → Changes, the inverse of the tar writer.

This reader interprets, it does not defend: whiteouts become WHITEOUT/OPAQUE changes and paths
are normalised (so no change ever holds a '..' component), but nothing is refused here. The
security boundary is ``store/unpack.py``, which applies a tar to a directory.

Input is read as a stream (``tarfile`` mode 'r|'), so a socket or a decompressor works. A FILE
change's ``content`` opener reads the current member; it is valid only until the iterator
advances, unless a ``spool`` is given to copy each file's data somewhere durable first.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast

from layerbuild.errors import ImageFormatError
from layerbuild.image.changes import (
    OPAQUE_MARKER,
    WHITEOUT_PREFIX,
    Change,
    ChangeKind,
    Opener,
    normalize_path,
)

# A spool receives a reader of one member's data and its size and returns a durable opener.
Spool = Callable[[BinaryIO, int], Opener]

_XATTR_PREFIX = "SCHILY.xattr."
# AUFS keeps its own metadata under names such as .wh..wh.plnk; Docker skips them on import
_AUFS_META_PREFIX = WHITEOUT_PREFIX + WHITEOUT_PREFIX

_KINDS = {
    tarfile.REGTYPE: ChangeKind.FILE,
    tarfile.AREGTYPE: ChangeKind.FILE,
    tarfile.CONTTYPE: ChangeKind.FILE,
    tarfile.GNUTYPE_SPARSE: ChangeKind.FILE,
    tarfile.LNKTYPE: ChangeKind.HARDLINK,
    tarfile.SYMTYPE: ChangeKind.SYMLINK,
    tarfile.CHRTYPE: ChangeKind.CHARDEV,
    tarfile.BLKTYPE: ChangeKind.BLOCKDEV,
    tarfile.DIRTYPE: ChangeKind.DIR,
    tarfile.FIFOTYPE: ChangeKind.FIFO,
}


class TarMembers:
    """The members of a tar stream, each with an opener valid while it is the current one."""

    def __init__(self, fileobj: BinaryIO, *, what: str = "layer") -> None:
        self._what = what
        try:
            self._tar = tarfile.open(fileobj=fileobj, mode="r|")
        except tarfile.TarError as e:
            raise self._error(e) from e
        self._generation = 0

    def _error(self, e: Exception) -> ImageFormatError:
        return ImageFormatError(
            f"{self._what} is not a readable tar archive: {e}",
            hint="the blob may be truncated or use a compression that was not detected",
        )

    def __iter__(self) -> Iterator[tuple[tarfile.TarInfo, Opener]]:
        while True:
            try:
                info = self._tar.next()
            except tarfile.TarError as e:
                raise self._error(e) from e
            self._generation += 1
            # stream mode never looks back; dropping the member list keeps memory flat
            self._tar.members = []  # type: ignore[attr-defined]
            if info is None:
                return
            yield info, self._opener(info, self._generation)

    def _opener(self, info: tarfile.TarInfo, generation: int) -> Opener:
        def open_member() -> BinaryIO:
            if generation != self._generation:
                raise RuntimeError(
                    f"content of {info.name!r} was opened after the tar reader moved past it;"
                    " read it while iterating or pass a spool"
                )
            reader = self._tar.extractfile(info)
            if reader is None:
                raise RuntimeError(f"{info.name!r} has no content")
            return cast(BinaryIO, reader)

        return open_member


def member_kind(info: tarfile.TarInfo) -> ChangeKind | None:
    """The ChangeKind of a tar member's type; None for types a layer cannot hold."""
    return _KINDS.get(info.type)


def member_xattrs(info: tarfile.TarInfo) -> tuple[tuple[str, bytes], ...]:
    """SCHILY.xattr PAX records as (name, value) pairs sorted by name, values as raw bytes."""
    pairs = [
        (key[len(_XATTR_PREFIX) :], value.encode("utf-8", "surrogateescape"))
        for key, value in info.pax_headers.items()
        if key.startswith(_XATTR_PREFIX)
    ]
    return tuple(sorted(pairs))


def member_change(
    info: tarfile.TarInfo,
    kind: ChangeKind,
    path: str,
    link: str,
    content: Opener | None,
) -> Change:
    """A Change with a member's metadata under a path (and link) the caller has chosen."""
    is_file = kind is ChangeKind.FILE
    return Change(
        path=path,
        kind=kind,
        mode=info.mode & 0o7777,
        uid=info.uid,
        gid=info.gid,
        size=info.size if is_file else 0,
        mtime=int(info.mtime),
        link=link,
        devmajor=info.devmajor if info.ischr() or info.isblk() else 0,
        devminor=info.devminor if info.ischr() or info.isblk() else 0,
        xattrs=member_xattrs(info),
        content=content if is_file and info.size > 0 else None,
    )


def spooled(spool: Spool | None, opener: Opener, size: int) -> Opener:
    """The opener to hand out: the member's own, or a durable copy made by ``spool``."""
    if spool is None:
        return opener
    with opener() as reader:
        return spool(reader, size)


def read_changes(fileobj: BinaryIO, *, spool: Spool | None = None) -> Iterator[Change]:
    """The Changes of a layer tar, in archive order.

    ``.wh.<name>`` becomes a WHITEOUT of ``<dir>/<name>`` and ``.wh..wh..opq`` an OPAQUE of its
    directory; hard link targets are normalised like paths; symlink targets are kept verbatim.
    Members of types a layer cannot hold (e.g. PAX global headers) are skipped.
    """
    for info, opener in TarMembers(fileobj):
        path = normalize_path(info.name)
        parent, name = posixpath.split(path)
        if name == OPAQUE_MARKER:
            yield Change(path=parent, kind=ChangeKind.OPAQUE, mode=0, mtime=int(info.mtime))
            continue
        if name.startswith(_AUFS_META_PREFIX):
            continue
        if name.startswith(WHITEOUT_PREFIX):
            gone = posixpath.join(parent, name[len(WHITEOUT_PREFIX) :])
            yield Change(path=gone, kind=ChangeKind.WHITEOUT, mode=0, mtime=int(info.mtime))
            continue
        kind = member_kind(info)
        if kind is None:
            continue
        if kind is ChangeKind.HARDLINK:
            link = normalize_path(info.linkname)
        elif kind is ChangeKind.SYMLINK:
            link = info.linkname
        else:
            link = ""
        content = spooled(spool, opener, info.size) if kind is ChangeKind.FILE else None
        yield member_change(info, kind, path, link, content)
