"""The entries of a layer blob (its Changes without their data), kept beside the blob.

A COPY needs the parent image's file tree (is `/app` a directory? whose is `/etc/passwd`?),
which is the metadata of every entry of every layer below. Reading it from the compressed
blobs costs a full decompression and a tar parse per build: 3.7 s for a Debian base plus an
`apt-get install` layer, on every one-line change of an application COPYed after them. A
blob never changes, so its entries are parsed once and kept in
``<store>/cache/entries/<hex>`` (the blob's digest), which loads in milliseconds.

The file is a cache, never the truth: one that is missing, unreadable or damaged is rebuilt from
the blob; gc removes the ones whose blob is gone (`forget`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import marshal
from collections.abc import Iterable
from pathlib import Path

from layerbuild.digest import Digest
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.decompress import open_layer
from layerbuild.image.manifest import Layer
from layerbuild.image.mediatypes import layer_compression
from layerbuild.image.tarreader import read_changes
from layerbuild.store.cacheindex import write_cache_file
from layerbuild.store.layout import Store

_FORMAT = 1  # bump when the tuple layout below changes: old files are then re-read
_KINDS = {kind.value: kind for kind in ChangeKind}
_Row = tuple[str, str, int, int, int, int, int, str, int, int, tuple[tuple[str, bytes], ...]]


def entries_dir(store_root: Path) -> Path:
    return store_root / "cache" / "entries"


def layer_entries(store: Store, layer: Layer, *, keep: bool = True) -> list[Change]:
    """The Changes of `layer`'s blob, in archive order, without content; `keep`: write them
    beside the blob when they were not (a dry run writes nothing but the stat cache)."""
    path = entries_dir(store.root) / layer.digest.hex
    cached = _load(path)
    if cached is not None:
        return cached
    with store.content.open(layer.digest) as blob:
        stream = open_layer(blob, layer_compression(layer.media_type))
        changes = [_bare(c) for c in read_changes(stream)]
    if keep:
        with contextlib.suppress(OSError):  # a read-only or full store still builds, slower
            _write(path, changes)
    return changes


def forget(store_root: Path, digests: Iterable[Digest]) -> None:
    """Drop the entries of blobs that are gone (gc)."""
    base = entries_dir(store_root)
    for digest in digests:
        (base / digest.hex).unlink(missing_ok=True)


def _bare(change: Change) -> Change:
    return change if change.content is None else dataclasses.replace(change, content=None)


def _row(c: Change) -> _Row:
    return (
        c.path, c.kind.value, c.mode, c.uid, c.gid, c.size, c.mtime, c.link,
        c.devmajor, c.devminor, c.xattrs,
    )  # fmt: skip


def _write(path: Path, changes: list[Change]) -> None:
    write_cache_file(path, marshal.dumps((_FORMAT, [_row(c) for c in changes])))


def _load(path: Path) -> list[Change] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        version, rows = marshal.loads(data)
        if version != _FORMAT:
            return None
        return [
            Change(p, _KINDS[k], mode, uid, gid, size, mtime, link, major, minor, tuple(xattrs))
            for p, k, mode, uid, gid, size, mtime, link, major, minor, xattrs in rows
        ]
    except (ValueError, EOFError, TypeError, KeyError):
        return None  # damaged or from another layout: read the blob again
