"""The entry index kept beside a layer blob: read back as written, and a damaged file, one of
another blob or another format is not used (the layer is then packed from its files)."""

from __future__ import annotations

from array import array
from pathlib import Path

from layerbuild.digest import Digest
from layerbuild.image.tarsplice import EntryIndex
from layerbuild.store import gc, tarindex
from layerbuild.store.layout import Store

BLOB = Digest("sha256:" + "ab" * 32)
OTHER = Digest("sha256:" + "cd" * 32)


def _index() -> EntryIndex:
    meta = array("q", [0o644, 0, 0, 10, 1_700_000_000, 0o755, 1000, 1000, 1 << 40, -1])
    sha256s = bytes(range(64))
    return EntryIndex(["a", "b/c"], array("Q", [0, 2048]), array("L", [512, 1024]), meta, sha256s)


def test_an_index_reads_back_as_written(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    tarindex.save(store, BLOB, _index())
    assert tarindex.index_path(store, BLOB).parent == store.tar_index_dir
    assert tarindex.load(store, BLOB) == _index()
    assert tarindex.load(store, OTHER) is None  # none kept


def test_a_damaged_index_is_not_used(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    tarindex.save(store, BLOB, _index())
    path = tarindex.index_path(store, BLOB)
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    assert tarindex.load(store, BLOB) is None
    path.write_bytes(b"\0")
    assert tarindex.load(store, BLOB) is None


def test_an_index_under_another_blobs_name_is_not_used(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    tarindex.save(store, BLOB, _index())
    tarindex.index_path(store, OTHER).write_bytes(tarindex.index_path(store, BLOB).read_bytes())
    assert tarindex.load(store, OTHER) is None


def test_forget_removes_the_index_of_a_removed_blob(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    tarindex.save(store, BLOB, _index())
    tarindex.save(store, OTHER, _index())
    tarindex.forget(store, [BLOB])
    assert tarindex.load(store, BLOB) is None and tarindex.load(store, OTHER) is not None


def test_gc_forgets_the_indexes_of_the_blobs_it_removes(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    with store.content.ingest() as ingest:
        ingest.write(b"an unreferenced blob")
        blob, _ = ingest.commit()
    tarindex.save(store, blob, _index())
    removed, _ = gc.collect(store)
    assert blob in removed and tarindex.load(store, blob) is None
