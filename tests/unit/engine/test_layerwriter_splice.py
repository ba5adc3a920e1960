"""LayerWriter with splicing on: a COPY layer packed again takes its unchanged entries from the
same step's previous layer, and is the blob a pack from the files writes; a previous layer
whose blob is damaged or gone costs the splice, never the layer."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from layerbuild.context.statcache import StatCache
from layerbuild.engine.layerwriter import LayerWriter
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.store.layout import Store
from tests.support.contexttree import file_digests, tree_changes

OLD_CTIME_S = 3  # past the racy margin: the key's digests are trusted


def _writer(store: Store, *, splice: bool = True) -> LayerWriter:
    statcache = StatCache(store.stat_db)
    return LayerWriter(store, statcache, "gzip", None, "2024-01-01T00:00:00Z", splice=splice)


def _tree(root: Path) -> list[Change]:
    rng = random.Random(1)
    for i in range(60):
        path = root / f"d{i % 4}" / f"f{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.choice((5, 900, 40_000))))
    return tree_changes(root)


def _aged(changes: list[Change]) -> list[Change]:
    """Wait until the files are past the racy margin (what a later build sees)."""
    time.sleep(OLD_CTIME_S)
    return changes


def _pack(writer: LayerWriter, changes: list[Change], previous: Layer | None) -> Layer:
    return writer.pack(changes, None, file_digests(changes), previous, indexed=True)


def test_a_repack_splices_and_writes_the_same_blob(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    writer = _writer(store)
    ctx = tmp_path / "ctx"
    first = _pack(writer, _tree(ctx), None)
    (ctx / "d1" / "f1.txt").write_bytes(b"changed")
    changes = _aged(tree_changes(ctx))
    second = _pack(writer, changes, first)
    assert (writer.splices.layers, writer.splices.written) == (1, 1)
    assert writer.splices.spliced == 59
    cold = _pack(_writer(Store.open(tmp_path / "fresh"), splice=False), changes, None)
    assert second == cold


def test_a_damaged_previous_blob_is_packed_from_the_files(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    writer = _writer(store)
    ctx = tmp_path / "ctx"
    first = _pack(writer, _tree(ctx), None)
    blob = store.content.path(first.digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the store's reader finds it does not hash to its name
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    changes = _aged(tree_changes(ctx))
    again = _pack(writer, changes, first)
    assert again.digest == first.digest and writer.splices.layers == 0
    assert store.content.has(first.digest)  # written anew from the files


def test_only_indexed_layers_keep_an_index(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    writer = _writer(store)
    changes = _tree(tmp_path / "ctx")
    run_layer = writer.pack(changes, None, file_digests(changes))  # a RUN's, a WORKDIR's
    assert not store.tar_index_dir.exists() or not any(store.tar_index_dir.iterdir())
    store.content.delete(run_layer.digest)
    assert _pack(writer, changes, None) == run_layer
    assert (store.tar_index_dir / run_layer.digest.hex).is_file()


def test_a_previous_layer_gone_is_no_splice(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    writer = _writer(store)
    ctx = tmp_path / "ctx"
    first = _pack(writer, _tree(ctx), None)
    store.content.delete(first.digest)
    again = _pack(writer, _aged(tree_changes(ctx)), first)
    assert again == first and writer.splices.layers == 0
