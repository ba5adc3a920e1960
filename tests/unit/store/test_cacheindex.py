"""CacheIndex records (description, last use), kept reports, and gc/prune of cached layers."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey
from layerbuild.store import Store
from layerbuild.store.cacheindex import (
    CacheIndex,
    CacheRecord,
    DamagedRecord,
    link_problem,
    result_digest,
)
from layerbuild.store.gc import cache_usage, collect, prune_cache
from layerbuild.store.images import tag, write_image

PARENT = result_digest(ImageConfig())  # what every record here was made on


def _layer(store: Store, data: bytes) -> Layer:
    # the cache never looks inside a layer: any blob stands in for one
    return Layer(sha256_bytes(data), store.content.put_bytes(data), len(data), mt.OCI_LAYER)


def _record(store: Store, name: str, data: bytes | None, *, used: float | None = None) -> Path:
    index = CacheIndex(store.root)
    key = CacheKey.of([("instruction", f"RUN {name}")])
    layer = _layer(store, data) if data is not None else None
    config = ImageConfig(diff_ids=(layer.diff_id,) if layer is not None else ())
    index.put(CacheRecord(key, layer, config, description=f"RUN {name}", parent=PARENT))
    path = index.path(key.digest, PARENT)
    if used is not None:
        os.utime(path, (used, used))
    return path


def test_record_round_trips_with_description_and_files(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    index = CacheIndex(store.root)
    key = CacheKey.of([("parent", "scratch"), ("instruction", "COPY a /a")])
    layer = _layer(store, b"layer")
    files = {"a": "sha256:x"}
    record = CacheRecord(key, layer, ImageConfig(), files=files, description="COPY", parent=PARENT)
    index.put(record)
    got = index.get(key, PARENT)
    assert got is not None
    assert (got.layer, dict(got.files), got.description) == (layer, {"a": "sha256:x"}, "COPY")
    assert (got.key, got.parent) == (key, PARENT)
    again = index.get_digest(key.digest, PARENT)
    assert again is not None and (again.key, again.layer) == (got.key, got.layer)
    assert index.get(key, result_digest(ImageConfig(os="other"))) is None


def test_a_record_needs_a_parent_link(tmp_path: Path) -> None:
    index = CacheIndex(Store.open(tmp_path).root)
    with pytest.raises(ValueError, match="parent"):
        index.put(CacheRecord(CacheKey.of([("instruction", "RUN x")]), None, ImageConfig()))


def test_records_of_format_1_are_listed_but_never_found(tmp_path: Path) -> None:
    """A store of an older layerbuild: its records have no parent link; they are not taken
    for a step (the step runs again), yet `cache ls` and `cache prune` still see them."""
    store = Store.open(tmp_path)
    index = CacheIndex(store.root)
    key = CacheKey.of([("instruction", "RUN x")])
    old = CacheRecord(key, None, ImageConfig()).to_json()
    del old["format"], old["parent"]
    path = index.keys_dir / key.digest.hex[:2] / key.digest.hex
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    assert index.get(key, PARENT) is None
    ((listed, record),) = index.records()
    assert listed == path and record.parent is None
    assert link_problem(record, ImageConfig()) == "it has no parent link (an older cache format)"
    assert [r.parent for r in index.with_key(key.digest)] == [None]


def test_link_problem_checks_the_layer_chain_against_the_parent(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    below, own = _layer(store, b"below"), _layer(store, b"own")
    parent = ImageConfig(diff_ids=(below.diff_id,))
    key = CacheKey.of([("instruction", "RUN x")])
    good = CacheRecord(
        key, own, ImageConfig(diff_ids=(below.diff_id, own.diff_id)), parent=result_digest(parent)
    )
    assert link_problem(good, parent) == link_problem(good, None) == ""
    other = ImageConfig(diff_ids=(own.diff_id,))
    assert link_problem(good, other) == "it was made on another parent result"
    lying = CacheRecord(key, own, ImageConfig(diff_ids=(own.diff_id,)), parent=good.parent)
    assert "not its parent's plus its own" in link_problem(lying, parent)
    assert "own layer" in link_problem(replace(good, config=parent), None)


def test_the_file_summary_is_kept_beside_and_read_only_when_asked(tmp_path: Path) -> None:
    """A hit parses the record without its (big) summary; `cache ls` never lists the
    summary as a record; removing a record removes its summary; a store written before
    summaries moved out still reads."""
    store = Store.open(tmp_path)
    index = CacheIndex(store.root)
    key = CacheKey.of([("instruction", "COPY . /src")])
    files = {f"f{i}": f"sha256:{i:064x} 0644 0:0" for i in range(100)}
    index.put(CacheRecord(key, _layer(store, b"l"), ImageConfig(), files=files, parent=PARENT))
    path = index.path(key.digest, PARENT)
    beside = path.with_name(path.name + ".files")
    assert json.loads(path.read_text())["files"] == "beside"
    assert json.loads(beside.read_text()) == files
    got = index.get(key, PARENT)
    assert got is not None
    beside.rename(beside.with_name("moved"))  # not read yet: gone means an empty summary
    assert dict(got.files) == {}
    beside.with_name("moved").rename(beside)
    got = index.get(key, PARENT)
    assert got is not None and dict(got.files) == files
    assert [p for p, _ in index.records()] == [path]
    index.remove(path)
    assert not path.exists() and not beside.exists()
    # the format before: the summary inline in the record
    inline = CacheRecord(key, None, ImageConfig(), files={"a": "sha256:y"}, parent=PARENT)
    old = inline.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(old))
    got = index.get(key, PARENT)
    assert got is not None and dict(got.files) == {"a": "sha256:y"}


def test_step_text_falls_back_to_the_instruction_input(tmp_path: Path) -> None:
    key = CacheKey.of([("instruction", "ENV A=1")])
    assert CacheRecord(key, None, ImageConfig()).step_text == "ENV A=1"


def test_touch_moves_last_used_without_rewriting(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    path = _record(store, "x", b"x", used=1000.0)
    before = path.read_bytes()
    index = CacheIndex(store.root)
    (entry,) = index.entries()
    assert entry.last_used == 1000.0
    index.touch(entry.path)
    (entry,) = index.entries()
    assert entry.last_used > time.time() - 60
    assert path.read_bytes() == before


def test_a_damaged_record_is_a_miss_not_an_error(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    path = _record(store, "x", b"x")
    path.write_bytes(b"{not json")
    key = CacheKey.of([("instruction", "RUN x")])
    assert CacheIndex(store.root).get(key, PARENT) is None
    assert CacheIndex(store.root).entries() == []
    with pytest.raises(DamagedRecord, match="not a cache record"):
        CacheIndex(store.root).fetch(key.digest, PARENT)
    moved = CacheIndex(store.root).path(key.digest, result_digest(ImageConfig(os="x")))
    _record(store, "x", b"x").rename(moved)  # a whole record under another parent's name
    with pytest.raises(DamagedRecord, match="not the one its name says"):
        CacheIndex(store.root).fetch(key.digest, result_digest(ImageConfig(os="x")))


def test_reports_are_kept_per_tag(tmp_path: Path) -> None:
    index = CacheIndex(Store.open(tmp_path).root)
    index.save_report("docker.io/library/app:1", {"image": "sha256:a", "steps": []})
    assert index.load_report("docker.io/library/app:1") == {"image": "sha256:a", "steps": []}
    assert index.load_report("docker.io/library/app:2") is None


def test_plain_gc_keeps_cached_layers(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    _record(store, "cached", b"cached layer")
    stray = store.content.put_bytes(b"stray")
    removed, _ = collect(store)
    assert removed == [stray]
    assert store.content.has(sha256_bytes(b"cached layer"))
    removed, _ = collect(store, keep_cache=False)
    assert removed == [sha256_bytes(b"cached layer")]


def test_du_counts_only_untagged_layers_as_reclaimable(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    _record(store, "a", b"a" * 100)
    _record(store, "b", b"b" * 10)
    layer = Layer(sha256_bytes(b"b" * 10), sha256_bytes(b"b" * 10), 10, mt.OCI_LAYER)
    tag(store, "app", write_image(store, ImageConfig(diff_ids=(layer.diff_id,)), [layer]))
    usage = cache_usage(store)
    assert (usage.records, usage.layers, usage.total, usage.reclaimable) == (2, 2, 110, 100)


def test_prune_default_keeps_records_of_tagged_layers(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    _record(store, "a", b"a" * 100)
    kept = _record(store, "b", b"b" * 10)
    meta = _record(store, "env", None)
    layer = Layer(sha256_bytes(b"b" * 10), sha256_bytes(b"b" * 10), 10, mt.OCI_LAYER)
    tag(store, "app", write_image(store, ImageConfig(diff_ids=(layer.diff_id,)), [layer]))
    result = prune_cache(store)
    assert (result.records, result.freed) == (1, 100)
    assert kept.exists() and meta.exists()
    assert not store.content.has(sha256_bytes(b"a" * 100))
    result = prune_cache(store, everything=True)
    assert result.records == 2
    assert store.content.has(layer.digest)  # the tagged image still needs it


def test_prune_keep_storage_drops_least_recently_used_first(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    now = time.time()
    old = _record(store, "old", b"o" * 100, used=now - 3000)
    mid = _record(store, "mid", b"m" * 100, used=now - 2000)
    new = _record(store, "new", b"n" * 100, used=now - 1000)
    result = prune_cache(store, keep_storage=150)
    assert result.records == 2
    assert (old.exists(), mid.exists(), new.exists()) == (False, False, True)
    assert cache_usage(store).reclaimable == 100


def test_prune_until_only_touches_records_unused_for_that_long(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    now = time.time()
    old = _record(store, "old", b"o", used=now - 7200)
    recent = _record(store, "recent", b"r", used=now - 60)
    assert prune_cache(store, older_than=3600, now=now).records == 1
    assert not old.exists() and recent.exists()


@pytest.mark.parametrize("everything", [False, True])
def test_prune_waits_for_a_running_build(tmp_path: Path, everything: bool) -> None:
    store = Store.open(tmp_path)
    _record(store, "a", b"a")
    with store.lock(shared=True):  # what a build holds while it runs
        with pytest.raises(StoreError, match="locked"):
            prune_cache(store, everything=everything, timeout=0.2)
    assert prune_cache(store, everything=True).blobs == 1
