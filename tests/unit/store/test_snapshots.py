from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.errors import DigestMismatch, ImageFormatError
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.store import Store
from layerbuild.store.snapshots import EMPTY, chain_ids, tree_size
from tests.support.hostile_tars import Entry, compress, make_tar


def put(store: Store, entries: list[Entry], compression: str = "gzip") -> Descriptor:
    blob = compress(make_tar(entries), compression)
    return Descriptor(mt.layer_media_type(compression), store.content.put_bytes(blob), len(blob))


def three_layers(store: Store) -> list[Descriptor]:
    return [
        put(store, [Entry("etc", "dir"), Entry("etc/a", data=b"a"), Entry("etc/b", data=b"b")]),
        put(store, [Entry("etc/.wh.a"), Entry("bin", "dir"), Entry("bin/x", data=b"x")], "zstd"),
        put(
            store,
            [Entry("etc", "dir"), Entry("etc/.wh..wh..opq"), Entry("etc/c", data=b"c")],
            "none",
        ),
    ]


def test_chain_ids_follow_the_oci_recurrence() -> None:
    d = [sha256_bytes(bytes([i])) for i in range(3)]
    layers = [Descriptor(mt.OCI_LAYER, x, 1) for x in d]
    c = chain_ids(layers)
    assert c[0] == d[0]
    assert c[1] == "sha256:" + hashlib.sha256(f"{d[0]} {d[1]}".encode()).hexdigest()
    assert c[2] == "sha256:" + hashlib.sha256(f"{c[1]} {d[2]}".encode()).hexdigest()


def test_rootfs_applies_layers_in_order(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layers = three_layers(store)
    root = store.snapshots.rootfs(store, layers)
    assert root == store.snapshots.path(chain_ids(layers)[-1])
    assert sorted(os.listdir(root)) == ["bin", "etc"]
    assert os.listdir(root / "etc") == ["c"]
    assert (root / "bin" / "x").read_bytes() == b"x"
    assert store.snapshots.rootfs(store, layers) == root  # cached
    assert [p for p in os.listdir(store.snapshots.root_dir) if p.startswith("tmp-")] == []


def test_rootfs_reuses_the_cached_prefix(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layers = three_layers(store)
    base = store.snapshots.rootfs(store, layers[:2])
    (base / "marker").write_text("from the cached parent")  # proves the copy, not a re-apply
    top = store.snapshots.rootfs(store, layers)
    assert (top / "marker").read_text() == "from the cached parent"
    assert store.snapshots.list() == sorted(chain_ids(layers)[1:])


def test_empty_layer_list(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    root = store.snapshots.rootfs(store, [])
    assert root.is_dir() and os.listdir(root) == []
    assert EMPTY in store.snapshots.list()


def test_corrupt_blob_leaves_no_snapshot(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    tar = make_tar([Entry("f", data=b"1" * 5000)])
    digest = store.content.put_bytes(tar)
    path = store.content.path(digest)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[600] ^= 1  # inside the file data: the tar still parses
    path.write_bytes(bytes(data))
    layer = Descriptor(mt.OCI_LAYER, digest, len(tar))
    with pytest.raises(DigestMismatch):
        store.snapshots.rootfs(store, [layer])
    assert os.listdir(store.snapshots.root_dir) == []


def test_hostile_layer_leaves_no_snapshot(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    bad = put(store, [Entry("../../x", data=b"x")])
    with pytest.raises(ImageFormatError):
        store.snapshots.rootfs(store, [bad])
    assert os.listdir(store.snapshots.root_dir) == []


def test_unknown_media_type(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layer = put(store, [Entry("f")])
    odd = Descriptor("application/x-odd", layer.digest, layer.size)
    with pytest.raises(ImageFormatError, match="media type"):
        store.snapshots.rootfs(store, [odd])


def test_remove_prune_and_stale_tmp(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layers = three_layers(store)
    store.snapshots.rootfs(store, layers[:1])
    store.snapshots.rootfs(store, layers)
    stale = store.snapshots.root_dir / "tmp-999999999-abc"
    (stale / "half").mkdir(parents=True)
    assert store.snapshots.remove(chain_ids(layers)[0]) is True
    assert store.snapshots.remove(chain_ids(layers)[0]) is False
    assert store.snapshots.prune(keep={chain_ids(layers)[-1]}) == []
    assert not stale.exists()
    assert store.snapshots.prune() == [chain_ids(layers)[-1]]
    assert os.listdir(store.snapshots.root_dir) == []


def _build(root: str, digests: list[str], media: list[str]) -> None:
    store = Store.open(Path(root))
    layers = []
    for d, m in zip(digests, media, strict=True):
        digest = Digest(d)
        layers.append(Descriptor(m, digest, store.content.size(digest)))
    store.snapshots.rootfs(store, layers)


def test_two_builds_prepare_the_same_chain(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layers = three_layers(store)
    args = (str(tmp_path), [str(x.digest) for x in layers], [x.media_type for x in layers])
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_build, args=args) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert store.snapshots.list() == [chain_ids(layers)[-1]]
    assert os.listdir(store.snapshots.path(chain_ids(layers)[-1]) / "etc") == ["c"]


def test_tree_size_counts_files_symlinks_and_hard_links_once(tmp_path: Path) -> None:
    root = tmp_path / "t"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"x" * 10)
    os.link(root / "d" / "f", root / "g")
    os.symlink("d", root / "to-dir")  # a symlink to a directory is an entry, not followed
    os.symlink("d/f", root / "to-file")
    assert tree_size(root) == 10 + len("d") + len("d/f")
