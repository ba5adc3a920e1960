"""A change's tar header block(s), encoded as Go's ``archive/tar`` writer encodes them.

Apart from tarwriter.py because the header format (USTAR when it fits, else a PAX extended
header; octal fields, name splitting, checksums) is a byte-level encoding with rules of its own,
while the writer owns the stream: ordering, file content, padding and digests. See tarwriter.py
for the choices both reproduce.
"""

from __future__ import annotations

import posixpath
import struct

from layerbuild.errors import LayerContentError
from layerbuild.image.changes import (
    OPAQUE_MARKER,
    WHITEOUT_PREFIX,
    Change,
    ChangeKind,
)

BLOCK = 512
# Bump when the header written for the same Change changes: a layer spliced from an older one
# takes its unchanged entries' headers from there (tarsplice.py), so their indexes must go.
HEADER_FORMAT = 1
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


def entry_header(change: Change, source_date_epoch: int | None = None) -> bytes:
    """The header block(s) for one change: a PAX extended header when needed, then USTAR."""
    kind = change.kind
    if kind is ChangeKind.WHITEOUT or kind is ChangeKind.OPAQUE:
        return _header(_marker_name(change), b"0", 0, 0, 0, 0, 0, b"", 0, 0, ())
    mtime = header_mtime(change.mtime, source_date_epoch)
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


def header_mtime(mtime: int, source_date_epoch: int | None) -> int:
    """The mtime a header states: clamped to SOURCE_DATE_EPOCH when that is set."""
    if source_date_epoch is not None and mtime > source_date_epoch:
        return source_date_epoch
    return mtime


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
    return _with_checksum(header) + data + padding(len(data))


def _pax_record(key: bytes, value: bytes) -> bytes:
    """'<len> key=value\\n' where len counts itself."""
    size = len(key) + len(value) + 3
    size += len(str(size))
    record = b"%d %s=%s\n" % (size, key, value)
    if len(record) != size:  # the length grew a digit by counting itself
        size = len(record)
        record = b"%d %s=%s\n" % (size, key, value)
    return record


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)
