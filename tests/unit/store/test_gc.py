from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Layer
from layerbuild.store import Store
from layerbuild.store.gc import collect, image_blobs, plan_collect
from layerbuild.store.images import read_image, tag, write_image
from layerbuild.store.layers import LayerSnapshots
from layerbuild.store.snapshots import chain_ids
from tests.support.hostile_tars import Entry, compress, make_tar


def image(store: Store, *contents: bytes) -> Descriptor:
    layers: list[Layer] = []
    for c in contents:
        tar = make_tar([Entry(f"f{len(layers)}", data=c)])
        blob = compress(tar, "gzip")
        layers.append(
            Layer(sha256_bytes(tar), store.content.put_bytes(blob), len(blob), mt.OCI_LAYER_GZIP)
        )
    config = ImageConfig(diff_ids=tuple(x.diff_id for x in layers))
    return write_image(store, config, layers)


def blobs_of(store: Store, desc: Descriptor) -> set[str]:
    _, manifest, _ = read_image(store, desc)
    layers = (str(x.digest) for x in manifest.layers)
    return {str(desc.digest), str(manifest.config.digest), *layers}


def test_collect_keeps_tagged_and_removes_the_rest(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    kept = image(store, b"shared", b"kept")
    dropped = image(store, b"shared", b"dropped")
    tag(store, "app", kept)
    _, kept_manifest, _ = read_image(store, kept)
    _, dropped_manifest, _ = read_image(store, dropped)
    store.snapshots.rootfs(store, kept_manifest.layers)
    store.snapshots.rootfs(store, dropped_manifest.layers)
    stray = store.content.put_bytes(b"stray blob")
    expected_gone = (blobs_of(store, dropped) - blobs_of(store, kept)) | {str(stray)}

    removed, freed = collect(store)

    assert {str(d) for d in removed} == expected_gone
    assert freed > len(b"stray blob")  # blobs plus the dropped snapshot
    assert {str(d) for d in store.content.digests()} == blobs_of(store, kept)
    assert store.snapshots.list() == [chain_ids(kept_manifest.layers)[-1]]
    assert collect(store) == ([], 0)


def test_the_plan_is_what_collect_then_removes_and_frees(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    kept = image(store, b"shared", b"kept")
    dropped = image(store, b"shared", b"dropped" * 1000)
    tag(store, "app", kept)
    _, dropped_manifest, _ = read_image(store, dropped)
    store.snapshots.rootfs(store, dropped_manifest.layers)
    stray = LayerSnapshots(tmp_path).prepare_layer()
    (stray / "f").write_bytes(b"12345")
    os.link(stray / "f", stray / "again")  # one file, counted once
    LayerSnapshots(tmp_path).commit_layer(stray, sha256_bytes(b"no such layer"))

    plan = plan_collect(store)
    assert {str(d) for d, _ in plan.blobs} == blobs_of(store, dropped) - blobs_of(store, kept)
    assert [size for _, size in plan.layer_snapshots] == [5]
    assert len(plan.chains) == 1 and plan.chains[0][1] > 0
    removed, freed = collect(store)
    assert removed == [d for d, _ in plan.blobs]
    assert freed == plan.freed
    assert plan_collect(store).freed == 0


def test_image_blobs_are_what_gc_keeps_for_one_image(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    inner = image(store, b"one", b"two")
    data = Index(manifests=(inner,)).to_bytes()
    index = Descriptor(mt.OCI_INDEX, store.content.put_bytes(data), len(data))
    needs = image_blobs(store, index)
    assert {str(d) for d in needs.blobs} == blobs_of(store, inner) | {str(index.digest)}
    _, manifest, _ = read_image(store, inner)
    assert sorted(x.digest for x in needs.layers) == sorted(x.digest for x in manifest.layers)


def test_collect_follows_indexes_and_roots(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    inner = image(store, b"in index")
    data = Index(manifests=(inner,)).to_bytes()
    index = Descriptor(mt.OCI_INDEX, store.content.put_bytes(data), len(data))
    tag(store, "multi", index)
    building = image(store, b"being built")
    extra = store.content.put_bytes(b"cache layer")
    inner_blobs, building_blobs = blobs_of(store, inner), blobs_of(store, building)
    with store.gc_root([building.digest]):
        removed, _ = collect(store, extra_roots=[extra])
    assert removed == []
    everything = inner_blobs | building_blobs | {str(index.digest), str(extra)}
    assert {str(d) for d in store.content.digests()} == everything
    removed, _ = collect(store)  # the root is released now
    assert {str(d) for d in removed} == (building_blobs | {str(extra)}) - inner_blobs


def _hold_shared(root: str, ready: object, release: object) -> None:
    with Store.open(Path(root)).lock(shared=True):
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


def test_collect_waits_for_running_builds(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.content.put_bytes(b"written by a running build")
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    build = ctx.Process(target=_hold_shared, args=(str(tmp_path), ready, release))
    build.start()
    assert ready.wait(10)
    try:
        with pytest.raises(StoreError, match=f"pid {build.pid}"):
            collect(store, timeout=0.2)
        assert len(list(store.content.digests())) == 1
    finally:
        release.set()
        build.join(10)
    assert len(collect(store)[0]) == 1
    assert os.listdir(store.root / "blobs" / "sha256") == []
