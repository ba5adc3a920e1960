"""Changes → a deterministic layer tar, byte for byte what BuildKit's layers look like.

BuildKit writes layers with containerd's ``archive.ChangeWriter`` on top of Go's
``archive/tar``. We reproduce the header choices of that pair, so that the same changes give
the same diff_id here, on any machine, and (for the same metadata) in BuildKit:

- Go's writer picks USTAR whenever the header fits it (names up to 100 bytes, or up to 256 when
  they split at a '/' into the 155-byte prefix field; ASCII only; numbers that fit the octal
  fields) and PAX otherwise, with the PAX records sorted by key and the extended header named
  ``<dir>/PaxHeaders.0/<base>``.
- No user/group names, no atime/ctime, whole-second mtimes (clamped to SOURCE_DATE_EPOCH when
  set), directories named with a trailing '/', permission bits only in the mode field.
- A hard link's first occurrence is a regular file with the data; later ones are type '1'
  entries with no data, whichever name the Change producer gave the data (``sorted_changes``
  moves it to the first name in layer order).
- Whiteouts and opaque markers are empty regular files with every field zero: containerd stamps
  whiteouts with time.Now() unless told otherwise, which would make layers irreproducible.
- The archive ends with two zero blocks and no padding to a 10 KiB record (``tar.Writer.Close``).

Only xattrs the Change carries are written (as ``SCHILY.xattr.<name>`` PAX records): the change
producers decide which to keep (containerd keeps only ``security.capability``).
"""

from __future__ import annotations

import hashlib
import posixpath
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import BinaryIO, Protocol

from layerbuild.digest import Digest
from layerbuild.errors import LayerContentError
from layerbuild.image.changes import (
    OPAQUE_MARKER,
    WHITEOUT_PREFIX,
    Change,
    ChangeKind,
    sorted_changes,
)

BLOCK = 512
CHUNK = 1 << 20  # file data is copied in 1 MiB reads
_EMPTY_DIGEST = Digest("sha256:" + hashlib.sha256(b"").hexdigest())
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)

_NAME_SIZE = 100
_PREFIX_SIZE = 155
# name mode uid gid size mtime chksum type linkname magic version uname gname major minor prefix
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
_CHKSUM_OFFSET = 148
_USTAR_MAGIC = b"ustar\0"
_USTAR_VERSION = b"00"
_NON_ASCII = bytes(range(0x80, 0x100)) + b"\0"
_ZERO_OCTAL_8 = b"0000000\0"
_PREFIX_OFFSET = 345
_MAX_OCTAL_8 = 1 << 21  # what fits 7 octal digits
_MAX_OCTAL_12 = 1 << 33  # 11 octal digits
_LINK_KINDS = frozenset((ChangeKind.SYMLINK, ChangeKind.HARDLINK))
_DEVICE_KINDS = frozenset((ChangeKind.CHARDEV, ChangeKind.BLOCKDEV))

_TYPEFLAGS = {
    ChangeKind.FILE: b"0",
    ChangeKind.HARDLINK: b"1",
    ChangeKind.SYMLINK: b"2",
    ChangeKind.CHARDEV: b"3",
    ChangeKind.BLOCKDEV: b"4",
    ChangeKind.DIR: b"5",
    ChangeKind.FIFO: b"6",
    ChangeKind.WHITEOUT: b"0",
    ChangeKind.OPAQUE: b"0",
}


class Writable(Protocol):
    """What the writer needs of its output: a binary file, a socket wrapper, a hashing pipe."""

    def write(self, data: bytes, /) -> object: ...


def write_tar(
    changes: Iterable[Change],
    out: Writable,
    *,
    source_date_epoch: int | None = None,
    digests: dict[str, Digest] | None = None,
    known: Mapping[str, Digest] | None = None,
) -> None:
    """Write ``changes`` as a layer tar to ``out``, in ``sorted_changes`` order.

    The output depends only on the changes (and the epoch), never on their input order, the
    machine or the time. Raises LayerContentError when a file's opener yields more or fewer
    bytes than its ``size`` (the file changed while it was being packed). With ``digests``,
    the sha256 of every file's content is recorded there by path as it is written: a cold
    COPY gets its cache key from the same single read that packs it. A file whose digest is
    `known` (the stat cache vouched for it) is not hashed again: it is read with its lstat
    checked after the read instead (``FileSource.chunks(settled=True)``), and given that digest.
    """
    write = out.write
    # an output that cuts its stream into blocks may cut where an entry starts (compress.py)
    entry_start: Callable[[bytes], object] | None = getattr(out, "entry_start", None)
    for change in sorted_changes(changes):
        header = entry_header(change, source_date_epoch)
        if entry_start is not None:
            entry_start(header)
        if change.kind is not ChangeKind.FILE:
            write(header)
        elif change.size > 0:
            _write_content(change, header, write, digests, known)
        else:
            write(header)
            if digests is not None:
                digests[change.path] = _EMPTY_DIGEST
    write(END_OF_ARCHIVE)


def entry_header(change: Change, source_date_epoch: int | None = None) -> bytes:
    """The header block(s) for one change: a PAX extended header when needed, then USTAR."""
    kind = change.kind
    if kind is ChangeKind.WHITEOUT or kind is ChangeKind.OPAQUE:
        return _header(_marker_name(change), b"0", 0, 0, 0, 0, 0, b"", 0, 0, ())
    mtime = change.mtime
    if source_date_epoch is not None and mtime > source_date_epoch:
        mtime = source_date_epoch
    name = _encode(change.path) + b"/" if kind is ChangeKind.DIR else _encode(change.path)
    if not name or name == b"/":
        name = b"./"  # the layer root itself, as `tar -C root .` names it
    size = change.size if kind is ChangeKind.FILE else 0
    link = _encode(change.link) if kind in _LINK_KINDS else b""
    mode = change.mode & 0o7777
    uid, gid = change.uid, change.gid
    if kind not in _DEVICE_KINDS:
        if _plain_ustar(name, link, change.xattrs, uid, gid, size, mtime):
            return _ustar_block(name, _TYPEFLAGS[kind], mode, uid, gid, size, mtime, link)
        devmajor = devminor = 0
    else:
        devmajor, devminor = change.devmajor, change.devminor
    return _header(
        name,
        _TYPEFLAGS[kind],
        mode,
        uid,
        gid,
        size,
        mtime,
        link,
        devmajor,
        devminor,
        change.xattrs,
    )


def _plain_ustar(
    name: bytes,
    link: bytes,
    xattrs: tuple[tuple[str, bytes], ...],
    uid: int,
    gid: int,
    size: int,
    mtime: int,
) -> bool:
    """Whether the entry needs no PAX record and no name split: the common case, which
    ``_ustar_block`` writes without the general path's checks (same bytes)."""
    return (
        not xattrs
        and len(name) <= _NAME_SIZE
        and len(link) <= _NAME_SIZE
        and name.isascii()
        and link.isascii()
        and b"\0" not in name
        and b"\0" not in link
        and 0 <= uid < _MAX_OCTAL_8
        and 0 <= gid < _MAX_OCTAL_8
        and 0 <= size < _MAX_OCTAL_12
        and 0 <= mtime < _MAX_OCTAL_12
    )


def _ustar_block(
    name: bytes, typeflag: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, link: bytes
) -> bytes:
    header = _HEADER.pack(
        name, b"%07o\0" % mode, b"%07o\0" % uid, b"%07o\0" % gid, b"%011o\0" % size,
        b"%011o\0" % mtime, b"        ", typeflag, link, _USTAR_MAGIC, _USTAR_VERSION, b"", b"",
        _ZERO_OCTAL_8, _ZERO_OCTAL_8, b"",
    )  # fmt: skip
    # the prefix field (from byte 345) is empty here: only the bytes before it can add up
    return b"%s%06o\0 %s" % (
        header[:_CHKSUM_OFFSET],
        sum(header[:_PREFIX_OFFSET]),
        header[_CHKSUM_OFFSET + 8 :],
    )


def _marker_name(change: Change) -> bytes:
    if change.kind is ChangeKind.OPAQUE:
        return _encode(posixpath.join(change.path, OPAQUE_MARKER))
    return _encode(posixpath.join(change.parent, WHITEOUT_PREFIX + change.name))


def _encode(text: str) -> bytes:
    # surrogateescape round-trips names that were not valid UTF-8 in the tar they came from
    return text.encode("utf-8", "surrogateescape")


def _fits_octal(value: int, width: int) -> bool:
    return 0 <= value < 1 << (3 * (width - 1))


def _octal(value: int, width: int) -> bytes:
    """Go's formatOctal: zero padded, NUL terminated; 0 when the value needs a PAX record."""
    if not _fits_octal(value, width):
        value = 0
    return b"%0*o\0" % (width - 1, value)


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """Go's splitUSTARPath: (prefix, name) for a long ASCII path, or None when it cannot split."""
    length = len(name)
    if length <= _NAME_SIZE or name.translate(None, _NON_ASCII) != name:
        return None
    if length > _PREFIX_SIZE + 1:
        length = _PREFIX_SIZE + 1
    elif name[length - 1 : length] == b"/":
        length -= 1
    i = name.rfind(b"/", 0, length)
    suffix_len = len(name) - i - 1
    if i <= 0 or suffix_len > _NAME_SIZE or suffix_len == 0 or i > _PREFIX_SIZE:
        return None
    return name[:i], name[i + 1 :]


def _pax_records(
    name: bytes,
    link: bytes,
    numbers: tuple[tuple[bytes, int, int], ...],
    xattrs: tuple[tuple[str, bytes], ...],
) -> dict[bytes, bytes]:
    """The PAX records Go's Writer collects for this header (allowedFormats).

    A long or non-ASCII path always gets a record; it is only written when something else
    forces PAX too, since a path that splits into prefix and name still fits USTAR.
    """
    records: dict[bytes, bytes] = {}
    if len(name) > _NAME_SIZE or name.translate(None, _NON_ASCII) != name:
        records[b"path"] = name
    if len(link) > _NAME_SIZE or link.translate(None, _NON_ASCII) != link:
        records[b"linkpath"] = link
    for key, value, width in numbers:
        if not _fits_octal(value, width):
            records[key] = b"%d" % value
    for xname, xvalue in xattrs:
        records[b"SCHILY.xattr." + _encode(xname)] = xvalue
    return records


def _header(
    name: bytes,
    typeflag: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    link: bytes,
    devmajor: int,
    devminor: int,
    xattrs: tuple[tuple[str, bytes], ...],
) -> bytes:
    if not (_fits_octal(devmajor, 8) and _fits_octal(devminor, 8)):
        raise LayerContentError(
            f"{name.decode('utf-8', 'replace')}: device number {devmajor}:{devminor} is too "
            "large for a tar header",
            hint="device files with such numbers cannot be stored in an image layer",
        )
    numbers = ((b"uid", uid, 8), (b"gid", gid, 8), (b"size", size, 12), (b"mtime", mtime, 12))
    records = _pax_records(name, link, numbers, xattrs)
    split = _split_ustar(name) if records.keys() == {b"path"} else None
    if not records or split is not None:
        prefix, short = split if split is not None else (b"", name)
        return _block(
            short, typeflag, mode, uid, gid, size, mtime, link, devmajor, devminor, prefix
        )
    pax = _pax_extended_header(name, records)
    main = _block(
        _ascii_field(name),
        typeflag,
        mode,
        uid,
        gid,
        size,
        mtime,
        _ascii_field(link),
        devmajor,
        devminor,
        b"",
    )
    return pax + main


def _ascii_field(value: bytes) -> bytes:
    """Go's PAX main-header string: non-ASCII dropped, cut at 100 bytes (no trailing '/')."""
    value = value.translate(None, _NON_ASCII)
    if len(value) <= _NAME_SIZE:
        return value
    field = bytearray(value[:_NAME_SIZE])
    # Go ends a cut name at its last non-slash so no reader mistakes a file for a directory
    if field[-1] == ord("/"):
        field[len(value[: _NAME_SIZE - 1].rstrip(b"/"))] = 0
    return bytes(field)


def _block(
    name: bytes,
    typeflag: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    link: bytes,
    devmajor: int,
    devminor: int,
    prefix: bytes,
) -> bytes:
    header = _HEADER.pack(
        name, _octal(mode, 8), _octal(uid, 8), _octal(gid, 8), _octal(size, 12),
        _octal(mtime, 12), b"        ", typeflag, link, _USTAR_MAGIC, _USTAR_VERSION, b"", b"",
        _octal(devmajor, 8), _octal(devminor, 8), prefix,
    )  # fmt: skip
    return _with_checksum(header)


def _with_checksum(header: bytes) -> bytes:
    # the checksum field counts as eight spaces while summing; it is stored as 6 octal + NUL + ' '
    return b"%s%06o\0 %s" % (header[:_CHKSUM_OFFSET], sum(header), header[_CHKSUM_OFFSET + 8 :])


def _pax_extended_header(name: bytes, records: dict[bytes, bytes]) -> bytes:
    """Go's writeRawFile for a 'x' header: fixed zero fields, name '<dir>/PaxHeaders.0/<base>'."""
    data = b"".join(_pax_record(key, records[key]) for key in sorted(records))
    cut = name.rfind(b"/") + 1  # Go's path.Split: the directory keeps its trailing '/'
    pax_name = posixpath.normpath(name[:cut] + b"PaxHeaders.0/" + name[cut:])
    pax_name = pax_name.translate(None, _NON_ASCII)[:_NAME_SIZE].rstrip(b"/")
    header = _HEADER.pack(
        pax_name, _octal(0, 8), _octal(0, 8), _octal(0, 8), _octal(len(data), 12), _octal(0, 12),
        b"        ", b"x", b"", _USTAR_MAGIC, _USTAR_VERSION, b"", b"", b"", b"", b"",
    )  # fmt: skip
    return _with_checksum(header) + data + _padding(len(data))


def _pax_record(key: bytes, value: bytes) -> bytes:
    """'<len> key=value\\n' where len counts itself."""
    size = len(key) + len(value) + 3
    size += len(str(size))
    record = b"%d %s=%s\n" % (size, key, value)
    if len(record) != size:  # the length grew a digit by counting itself
        size = len(record)
        record = b"%d %s=%s\n" % (size, key, value)
    return record


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def _write_content(
    change: Change,
    header: bytes,
    write: Callable[[bytes], object],
    digests: dict[str, Digest] | None,
    known: Mapping[str, Digest] | None = None,
) -> None:
    """The header, the data and its padding; a small file goes out as one write."""
    content = change.content
    if content is None:
        raise LayerContentError(
            f"{change.path}: a file of {change.size} bytes has no content to read",
            hint="this is a bug in the step that produced the file; please report it",
        )
    chunks: Callable[..., Iterable[bytes]] | None = getattr(content, "chunks", None)
    trusted = known.get(change.path) if known is not None and chunks is not None else None
    h = hashlib.sha256() if digests is not None and trusted is None else None
    try:
        if chunks is None:
            write(header)
            got = _copy_opened(content, change.size, write, h)
        else:  # a FileSource: no file object, and a small file leaves as one write
            got = 0
            pad = _padding(change.size)
            for chunk in chunks(CHUNK, settled=trusted is not None):
                got += len(chunk)
                if h is not None:
                    h.update(chunk)
                if header:
                    if got == change.size:
                        chunk, pad = header + chunk + pad, b""
                    else:
                        write(header)
                    header = b""
                write(chunk)
            if pad:
                write(pad)
    except OSError as e:
        raise LayerContentError(
            f"{change.path}: cannot read file content while writing the layer: {e}",
            hint="check that the file still exists and is readable, then build again",
        ) from e
    if got != change.size:
        got_text = "more" if got > change.size else f"{got}"
        raise LayerContentError(
            f"{change.path}: expected {change.size} bytes but read {got_text}; the file changed "
            "while the layer was being written",
            hint="make sure nothing modifies the build context or image during the build",
        )
    if digests is not None and trusted is not None:
        digests[change.path] = trusted
    elif digests is not None and h is not None:
        digests[change.path] = Digest.from_hash(h)


def _copy_opened(
    content: Callable[[], BinaryIO],
    size: int,
    write: Callable[[bytes], object],
    h: hashlib._Hash | None,
) -> int:
    """Copy an opened file's data and padding; the count read (size + 1 when it grew)."""
    remaining = size
    with content() as src:
        while remaining > 0:
            chunk = src.read(min(CHUNK, remaining))
            if not chunk:
                break
            write(chunk)
            if h is not None:
                h.update(chunk)
            remaining -= len(chunk)
        if remaining == 0 and src.read(1):
            return size + 1
    if remaining == 0:
        write(_padding(size))
    return size - remaining
