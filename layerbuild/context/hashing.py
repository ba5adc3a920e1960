"""changes_digest: the identity of what a COPY/ADD puts in a layer, for its cache key.

The digest covers the Changes a COPY produces (``engine/copysemantics.py::copy_changes``), in layer
order, so it sees the files exactly as they land: after .dockerignore, --exclude and globs,
with --chown/--chmod applied and hard links already folded into HARDLINK entries. It never
covers mtime (a touched file must not miss) nor anything a Change does not carry.

Encoding (version 1), fed to sha256 as one byte stream::

    "layerbuild.changes.v1\\n"
    per Change, in the order given:
        str(path) str(kind.value) u64le(mode, uid, gid, size, devmajor, devminor)
        str(link) u32le(len(xattrs)) { str(name) bytes(value) } sorted by name
        str(content)                 "sha256:<hex>" for a FILE, "" otherwise
    u64le(number of Changes)

where ``bytes(b)`` is ``u32le(len(b)) + b`` and ``str(s)`` is ``bytes`` of its UTF-8 (lone
surrogates from undecodable file names kept by surrogateescape). Every variable-length field
is length-prefixed, so no two different lists of Changes encode to the same stream. Changing
this encoding changes every COPY key: bump the version line when doing so.

A FILE read from the context (``content`` is a FileSource) gets its digest from the stat
cache, which re-reads only files it cannot vouch for; other openers (heredocs, archive
members, downloads) are read in full.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence

from layerbuild.context.filesource import READ_SIZE, FileSource, hash_files
from layerbuild.context.statcache import StatCache
from layerbuild.digest import Digest
from layerbuild.image.changes import Change, ChangeKind, Opener

_VERSION = b"layerbuild.changes.v1\n"
_INTS = struct.Struct("<6Q")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
# a FILE's record after its kind when it has no link and no xattrs: the six ints, u32le(0) for
# the empty link, u32le(0) xattrs, then the content digest's length
_PLAIN_FILE = struct.Struct("<6Q3I")
_FILE = ChangeKind.FILE
_EMPTY = Digest("sha256:" + hashlib.sha256(b"").hexdigest())


def changes_digest(
    changes: Sequence[Change],
    statcache: StatCache | None,
    *,
    known: Mapping[str, Digest] | None = None,
) -> tuple[Digest, dict[str, str]]:
    """The digest of ``changes`` (see the module docstring) and a per-path summary.

    The summary maps each path to what landed there, e.g. ``"sha256:… 0644 0:0"`` for a file,
    ``"dir 0755 0:0"``, ``"symlink:../lib 0777 0:0"``, ``"hardlink:usr/bin/a 0755 0:0"``,
    ``"chardev:1,3 0666 0:0"``, ``"fifo 0644 0:0"``, ``"whiteout"``, ``"opaque"``, with
    `` xattrs:<12 hex>`` appended when the entry has xattrs. Store it beside the key, so a
    later miss can name the paths that differ (``plan.keys.explain``).
    """
    contents = _file_digests(changes, statcache, known or {})
    records = [_VERSION]
    summary: dict[str, str] = {}
    append, u32, plain, file_kind = records.append, _U32.pack, _PLAIN_FILE.pack, _KINDS[_FILE]
    for i, change in enumerate(changes):
        content = contents.get(i, "")
        if change.kind is _FILE and not change.xattrs and not change.link:
            # the bulk of a big COPY, written out: `_encode` and `_describe` of such a file
            path = change.path.encode("utf-8", "surrogateescape")
            digest = content.encode()
            mode, uid, gid = change.mode, change.uid, change.gid
            size, major, minor = change.size, change.devmajor, change.devminor
            ints = plain(mode, uid, gid, size, major, minor, 0, 0, len(digest))
            append(b"".join((u32(len(path)), path, file_kind, ints, digest)))
            summary[change.path] = f"{content} {mode:04o} {uid}:{gid}"
            continue
        append(_encode(change, content))
        summary[change.path] = _describe(change, content)
    records.append(_U64.pack(len(changes)))
    return Digest.from_hash(hashlib.sha256(b"".join(records))), summary


def _file_digests(
    changes: Sequence[Change], statcache: StatCache | None, known: Mapping[str, Digest]
) -> dict[int, Digest]:
    """Content digest of each FILE Change, by index: from `known` (read while packing), else
    context files through the stat cache in one batch so its misses are hashed in parallel."""
    out: dict[int, Digest] = {}
    on_disk: list[int] = []
    items = []
    for i, change in enumerate(changes):
        if change.kind is not ChangeKind.FILE:
            continue
        if change.path in known:
            out[i] = known[change.path]
            continue
        source = change.content
        if isinstance(source, FileSource):
            on_disk.append(i)
            items.append((source.path, source.st))
        elif source is None:
            out[i] = _EMPTY
        else:
            out[i] = _read_opener(source)
    if statcache is not None:
        digests = statcache.digests(items)
    else:
        digests = [result.digest for result in hash_files(items)]
    out.update(zip(on_disk, digests, strict=True))
    return out


def _read_opener(opener: Opener) -> Digest:
    h = hashlib.sha256()
    with opener() as f:
        while chunk := f.read(READ_SIZE):
            h.update(chunk)
    return Digest.from_hash(h)


def _str(text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    return _U32.pack(len(data)) + data


def _bytes(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


_KINDS = {kind: _str(kind.value) for kind in ChangeKind}


def _encode(change: Change, content: str) -> bytes:
    """One Change's record; the hot loop of a warm rebuild, hence written out flat."""
    path = change.path.encode("utf-8", "surrogateescape")
    link = change.link.encode("utf-8", "surrogateescape")
    digest = content.encode()
    ints = _INTS.pack(
        change.mode, change.uid, change.gid, change.size, change.devmajor, change.devminor
    )
    xattrs = _U32.pack(len(change.xattrs))
    for name, value in sorted(change.xattrs):
        xattrs += _str(name) + _bytes(value)
    return b"".join(
        (
            _U32.pack(len(path)),
            path,
            _KINDS[change.kind],
            ints,
            _U32.pack(len(link)),
            link,
            xattrs,
            _U32.pack(len(digest)),
            digest,
        )
    )


def _describe(change: Change, content: str) -> str:
    kind = change.kind
    if kind is ChangeKind.WHITEOUT or kind is ChangeKind.OPAQUE:
        return str(kind.value)
    if kind is ChangeKind.FILE:
        what = content
    elif kind is ChangeKind.SYMLINK or kind is ChangeKind.HARDLINK:
        what = f"{kind.value}:{change.link}"
    elif kind is ChangeKind.CHARDEV or kind is ChangeKind.BLOCKDEV:
        what = f"{kind.value}:{change.devmajor},{change.devminor}"
    else:
        what = kind.value
    text = f"{what} {change.mode:04o} {change.uid}:{change.gid}"
    if change.xattrs:
        xattrs = b"".join(_str(n) + _bytes(v) for n, v in sorted(change.xattrs))
        text += f" xattrs:{hashlib.sha256(xattrs).hexdigest()[:12]}"
    return text
