"""LayerSnapshots with delta snapshots: a layer's directories are its delta's and then its
base's; a delta is committed only over a base that is there; one whose base is gone is no
snapshot (the layer is unpacked again); gc keeps a kept delta's bases; the overlay lower limit
counts directories, not layers."""

from __future__ import annotations

import os
from pathlib import Path

from layerbuild.digest import sha256_bytes
from layerbuild.store import Store
from layerbuild.store.layers import LayerSnapshots
from tests.support.hostile_tars import Entry
from tests.unit.store.test_layers import put


def _delta(snaps: LayerSnapshots, diff_id: object, base: object, content: bytes) -> Path:
    tree = snaps.prepare_layer()
    (tree / "etc").mkdir()
    (tree / "etc" / "a").write_bytes(content)
    return snaps.commit_layer(tree, diff_id, base=base)  # type: ignore[arg-type]


def test_a_delta_is_stacked_above_its_base(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    old = put(store, [Entry("etc", "dir"), Entry("etc/a", data=b"a"), Entry("etc/b", data=b"b")])
    new = put(store, [Entry("etc", "dir"), Entry("etc/a", data=b"A"), Entry("etc/b", data=b"b")])
    snaps = LayerSnapshots(tmp_path, rootless=False)
    base = snaps.layer_dir(store, old)
    delta = _delta(snaps, new.diff_id, old.diff_id, b"A")
    assert delta.name == f"{new.diff_id.hex}-on-{old.diff_id.hex}"
    assert snaps.chain(new.diff_id) == [delta, base]
    assert snaps.find(new.diff_id) == delta
    assert snaps.lowerdirs(store, [old, new]) == [delta, base, base]
    assert not (delta / "etc" / "b").exists()  # nothing unchanged is copied
    # the upper dir of a RUN over a layer that already has a snapshot is not committed
    assert snaps.commit_upper(store, new, snaps.prepare_step().upper) == delta


def test_no_delta_over_a_missing_base(tmp_path: Path) -> None:
    snaps = LayerSnapshots(tmp_path, rootless=False)
    new, gone = sha256_bytes(b"new"), sha256_bytes(b"gone")
    tree = snaps.prepare_layer()
    assert snaps.commit_layer(tree, new, base=gone) == tree  # left for discard_layer
    snaps.discard_layer(tree)
    assert snaps.find(new) is None and os.listdir(snaps.root_dir) == []


def test_a_delta_whose_base_is_gone_is_unpacked_again(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    old = put(store, [Entry("etc", "dir"), Entry("etc/a", data=b"a")])
    new = put(store, [Entry("etc", "dir"), Entry("etc/a", data=b"A")])
    snaps = LayerSnapshots(tmp_path, rootless=False)
    base = snaps.layer_dir(store, old)
    _delta(snaps, new.diff_id, old.diff_id, b"A")
    os.rename(base, base.with_name("tmp-1-gone"))  # as if removed behind gc's back
    assert snaps.chain(new.diff_id) is None
    dirs = snaps.layer_dirs(store, new)
    assert dirs == [snaps.path(new.diff_id)] and (dirs[0] / "etc" / "a").read_bytes() == b"A"
    assert snaps.chain(new.diff_id) == dirs  # the full snapshot wins from now on


def test_gc_keeps_the_base_of_a_kept_delta(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    old = put(store, [Entry("etc", "dir"), Entry("etc/a", data=b"a")])
    new = put(store, [Entry("etc", "dir"), Entry("etc/a", data=b"A")])
    snaps = LayerSnapshots(tmp_path, rootless=False)
    base = snaps.layer_dir(store, old)
    delta = _delta(snaps, new.diff_id, old.diff_id, b"A")
    assert snaps.unneeded({new.diff_id.hex}) == []
    assert snaps.unneeded({old.diff_id.hex}) == [delta]
    assert sorted(snaps.unneeded(set())) == sorted([base, delta])
    snaps.prune({new.diff_id.hex})
    assert snaps.chain(new.diff_id) == [delta, base]
    snaps.prune(set())
    assert os.listdir(snaps.root_dir) == []


def test_the_lower_limit_counts_a_deltas_whole_chain(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    old = put(store, [Entry("etc", "dir"), Entry("etc/a", data=b"a")])
    new = put(store, [Entry("etc", "dir"), Entry("etc/a", data=b"A")])
    top = put(store, [Entry("top", data=b"t")])
    snaps = LayerSnapshots(tmp_path, rootless=False)
    base = snaps.layer_dir(store, old)
    delta = _delta(snaps, new.diff_id, old.diff_id, b"A")
    full = snaps.lowerdirs(store, [old, new, top])
    assert full == [snaps.path(top.diff_id), delta, base, base]
    flat = snaps.lowerdirs(store, [old, new, top], limit=3)
    assert flat[0] == snaps.path(top.diff_id) and len(flat) == 2  # new and old merged
    assert (flat[1] / "etc" / "a").read_bytes() == b"A"
