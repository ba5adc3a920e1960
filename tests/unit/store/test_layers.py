"""LayerSnapshots: one layer per directory, in overlayfs lowerdir format."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.errors import DigestMismatch
from layerbuild.image import mediatypes as mt
from layerbuild.image.manifest import Layer
from layerbuild.store import Store
from layerbuild.store.layers import LayerSnapshots, remove_tree
from tests.support.hostile_tars import Entry, compress, make_tar

IS_ROOT = os.geteuid() == 0


def put(store: Store, entries: list[Entry], compression: str = "gzip") -> Layer:
    tar = make_tar(entries)
    blob = compress(tar, compression)
    digest = store.content.put_bytes(blob)
    return Layer(sha256_bytes(tar), digest, len(blob), mt.layer_media_type(compression))


def three_layers(store: Store) -> list[Layer]:
    return [
        put(store, [Entry("etc", "dir"), Entry("etc/a", data=b"a"), Entry("etc/b", data=b"b")]),
        put(store, [Entry("etc/.wh.a"), Entry("bin", "dir"), Entry("bin/x", data=b"x")], "zstd"),
        put(store, [Entry("etc", "dir"), Entry("etc/.wh..wh..opq"), Entry("etc/c", data=b"c")]),
    ]


def test_a_layer_is_unpacked_alone_with_whiteouts_as_devices(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layers = three_layers(store)
    snaps = LayerSnapshots(tmp_path)
    second = snaps.layer_dir(store, layers[1])
    assert second == snaps.path(layers[1].diff_id)
    assert sorted(os.listdir(second)) == ["bin", "etc"]
    st = os.lstat(second / "etc" / "a")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert (second / "bin" / "x").read_bytes() == b"x"
    assert snaps.layer_dir(store, layers[1]) == second  # cached
    assert [p for p in os.listdir(snaps.root_dir) if p.startswith("tmp-")] == []


@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="trusted.* xattrs need root")
def test_opaque_marker_becomes_both_opaque_xattrs_for_root(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    third = LayerSnapshots(tmp_path, rootless=False).layer_dir(store, three_layers(store)[2])
    assert os.getxattr(third / "etc", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(third / "etc", "user.overlay.opaque") == b"y"
    assert os.listdir(third / "etc") == ["c"]


def test_rootless_snapshots_are_kept_apart(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layer = three_layers(store)[2]
    rootless = LayerSnapshots(tmp_path, rootless=True)
    path = rootless.layer_dir(store, layer)
    assert path.name.endswith("-userns")
    assert os.getxattr(path / "etc", "user.overlay.opaque") == b"y"
    assert LayerSnapshots(tmp_path, rootless=False).find(layer.diff_id) is None


def test_a_wrong_diff_id_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    good = three_layers(store)[0]
    bad = Layer(Digest("sha256:" + "0" * 64), good.digest, good.size, good.media_type)
    snaps = LayerSnapshots(tmp_path)
    with pytest.raises(DigestMismatch):
        snaps.layer_dir(store, bad)
    assert os.listdir(snaps.root_dir) == []


def test_lowerdirs_are_top_most_first_and_flattened_past_the_limit(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layers = three_layers(store)
    snaps = LayerSnapshots(tmp_path)
    dirs = snaps.lowerdirs(store, layers)
    assert dirs == [snaps.path(x.diff_id) for x in reversed(layers)]
    flat = snaps.lowerdirs(store, layers, limit=2)
    assert flat[0] == snaps.path(layers[2].diff_id)
    merged = flat[1]  # layers 0 and 1 applied: etc/a deleted, bin/x added
    assert sorted(os.listdir(merged / "etc")) == ["b"]
    assert (merged / "bin" / "x").read_bytes() == b"x"
    assert len(flat) == 2
    assert snaps.lowerdirs(store, []) == [store.snapshots.rootfs(store, [])]


def test_commit_upper_moves_the_step_upper_into_place(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layer = three_layers(store)[0]
    snaps = LayerSnapshots(tmp_path)
    step = snaps.prepare_step()
    (step.upper / "d").mkdir()
    (step.upper / "d" / "f").write_bytes(b"data")
    os.setxattr(step.upper / "d", "user.overlay.opaque", b"y")
    os.setxattr(step.upper / "d" / "f", "user.overlay.origin", b"\x00")
    os.setxattr(step.upper / "d" / "f", "user.keep", b"1")
    committed = snaps.commit_upper(store, layer, step.upper)
    snaps.discard(step)
    assert committed == snaps.path(layer.diff_id)
    assert (committed / "d" / "f").read_bytes() == b"data"
    assert os.listxattr(committed / "d" / "f") == ["user.keep"]
    assert os.getxattr(committed / "d", "user.overlay.opaque") == b"y"
    assert not step.tmp.exists()
    assert snaps.layer_dir(store, layer) == committed  # never unpacked again


def test_a_tree_written_by_the_caller_becomes_the_layers_snapshot(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layer = three_layers(store)[0]
    snaps = LayerSnapshots(tmp_path)
    assert snaps.find(layer.diff_id) is None
    tree = snaps.prepare_layer()
    assert list(tree.iterdir()) == []
    (tree / "f").write_bytes(b"written, not unpacked")
    committed = snaps.commit_layer(tree, layer.diff_id)
    snaps.discard_layer(tree)  # committed: nothing left to remove
    assert committed == snaps.find(layer.diff_id) == snaps.path(layer.diff_id)
    assert snaps.layer_dir(store, layer) == committed
    assert (committed / "f").read_bytes() == b"written, not unpacked"
    second = snaps.prepare_layer()
    assert snaps.commit_layer(second, layer.diff_id) == committed  # the first one stays
    snaps.discard_layer(second)
    assert not second.exists()


def test_stale_tmp_dirs_of_dead_builds_are_removed(tmp_path: Path) -> None:
    snaps = LayerSnapshots(tmp_path)
    dead = snaps.root_dir / "tmp-999999999-abc"
    (dead / "work" / "work").mkdir(parents=True)
    os.chmod(dead / "work" / "work", 0)
    mine = snaps.prepare_step()
    LayerSnapshots(tmp_path)  # opening cleans up after dead processes
    assert not dead.exists()
    assert mine.tmp.exists()
    remove_tree(mine.tmp)
    assert not mine.tmp.exists()
