"""A layer blob's entries, parsed once and kept beside it (store/layerentries.py)."""

from __future__ import annotations

from pathlib import Path

from layerbuild.digest import sha256_bytes
from layerbuild.image import mediatypes as mt
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.decompress import open_layer
from layerbuild.image.manifest import Layer
from layerbuild.image.tarreader import read_changes
from layerbuild.store import Store
from layerbuild.store.gc import collect
from layerbuild.store.layerentries import entries_dir, layer_entries
from tests.support.hostile_tars import Entry, compress, make_tar

ENTRIES = [
    Entry("etc", "dir"),
    Entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
    Entry("etc/.wh.old"),
    Entry("usr", "dir"),
    Entry("usr/.wh..wh..opq"),
    Entry("usr/bin", "dir"),
    Entry("usr/bin/sh", "symlink", link="busybox"),
    Entry("usr/bin/busybox", data=b"\x7fELF" * 10),
    Entry("usr/bin/ash", "hardlink", link="usr/bin/busybox"),
]


def _layer(store: Store, entries: list[Entry], compression: str = "gzip") -> Layer:
    tar = make_tar(entries)
    blob = compress(tar, compression)
    digest = store.content.put_bytes(blob)
    return Layer(sha256_bytes(tar), digest, len(blob), mt.layer_media_type(compression))


def _from_blob(store: Store, layer: Layer) -> list[Change]:
    with store.content.open(layer.digest) as blob:
        stream = open_layer(blob, mt.layer_compression(layer.media_type))
        return list(read_changes(stream))


def _fields(changes: list[Change]) -> list[tuple[object, ...]]:
    return [
        (c.path, c.kind, c.mode, c.uid, c.gid, c.size, c.mtime, c.link, c.xattrs)
        for c in changes
    ]


def test_entries_equal_the_blobs_and_are_kept_for_the_next_reader(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layer = _layer(store, ENTRIES, "zstd")
    first = layer_entries(store, layer)
    assert _fields(first) == _fields(_from_blob(store, layer))
    kinds = [(c.path, c.kind) for c in first]
    assert ("etc/old", ChangeKind.WHITEOUT) in kinds and ("usr", ChangeKind.OPAQUE) in kinds
    assert ("usr/bin/ash", ChangeKind.HARDLINK) in kinds
    assert all(c.content is None for c in first)
    kept = entries_dir(tmp_path) / layer.digest.hex
    assert kept.is_file()

    store.content.path(layer.digest).chmod(0)  # the next read must not need the blob
    try:
        again = layer_entries(store, layer)
    finally:
        store.content.path(layer.digest).chmod(0o444)
    assert _fields(again) == _fields(first)


def test_a_damaged_entries_file_is_rebuilt_from_the_blob(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layer = _layer(store, ENTRIES)
    good = _fields(layer_entries(store, layer))
    kept = entries_dir(tmp_path) / layer.digest.hex
    for damage in (b"", b"not marshal data", kept.read_bytes()[:40]):
        kept.write_bytes(damage)
        assert _fields(layer_entries(store, layer)) == good


def test_gc_drops_the_entries_of_blobs_it_removes(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layer = _layer(store, ENTRIES)
    layer_entries(store, layer)
    removed, _ = collect(store)
    assert layer.digest in removed
    assert not (entries_dir(tmp_path) / layer.digest.hex).exists()
