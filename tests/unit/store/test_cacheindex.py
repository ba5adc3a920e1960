"""CacheIndex records (description, last use), kept reports, and gc/prune of cached layers."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey
from layerbuild.store import Store
from layerbuild.store.cacheindex import CacheIndex, CacheRecord
from layerbuild.store.gc import cache_usage, collect, prune_cache
from layerbuild.store.images import tag, write_image


def _layer(store: Store, data: bytes) -> Layer:
    # the cache never looks inside a layer: any blob stands in for one
    return Layer(sha256_bytes(data), store.content.put_bytes(data), len(data), mt.OCI_LAYER)


def _record(store: Store, name: str, data: bytes | None, *, used: float | None = None) -> Path:
    index = CacheIndex(store.root)
    key = CacheKey.of([("instruction", f"RUN {name}")])
    layer = _layer(store, data) if data is not None else None
    index.put(CacheRecord(key, layer, ImageConfig(), description=f"RUN {name}"))
    path = index._path(key.digest)
    if used is not None:
        os.utime(path, (used, used))
    return path


def test_record_round_trips_with_description_and_files(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    index = CacheIndex(store.root)
    key = CacheKey.of([("parent", "scratch"), ("instruction", "COPY a /a")])
    layer = _layer(store, b"layer")
    record = CacheRecord(key, layer, ImageConfig(), files={"a": "sha256:x"}, description="COPY")
    index.put(record)
    got = index.get(key)
    assert got is not None
    assert (got.layer, dict(got.files), got.description) == (layer, {"a": "sha256:x"}, "COPY")
    assert got.key == key
    again = index.get_digest(key.digest)
    assert again is not None and (again.key, again.layer) == (got.key, got.layer)


def test_the_file_summary_is_kept_beside_and_read_only_when_asked(tmp_path: Path) -> None:
    """A hit parses the record without its (big) summary; `cache ls` never lists the
    summary as a record; removing a record removes its summary; a store written before
    summaries moved out still reads."""
    store = Store.open(tmp_path)
    index = CacheIndex(store.root)
    key = CacheKey.of([("instruction", "COPY . /src")])
    files = {f"f{i}": f"sha256:{i:064x} 0644 0:0" for i in range(100)}
    index.put(CacheRecord(key, _layer(store, b"l"), ImageConfig(), files=files))
    path = index._path(key.digest)
    beside = path.with_name(path.name + ".files")
    assert json.loads(path.read_text())["files"] == "beside"
    assert json.loads(beside.read_text()) == files
    got = index.get(key)
    assert got is not None
    beside.rename(beside.with_name("moved"))  # not read yet: gone means an empty summary
    assert dict(got.files) == {}
    beside.with_name("moved").rename(beside)
    got = index.get(key)
    assert got is not None and dict(got.files) == files
    assert [p for p, _ in index.records()] == [path]
    index.remove(path)
    assert not path.exists() and not beside.exists()
    # the format before: the summary inline in the record
    old = CacheRecord(key, None, ImageConfig(), files={"a": "sha256:y"}).to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(old))
    got = index.get(key)
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
    index.touch(entry.record.key.digest)
    (entry,) = index.entries()
    assert entry.last_used > time.time() - 60
    assert path.read_bytes() == before


def test_a_damaged_record_is_a_miss_not_an_error(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    path = _record(store, "x", b"x")
    path.write_bytes(b"{not json")
    key = CacheKey.of([("instruction", "RUN x")])
    assert CacheIndex(store.root).get(key) is None
    assert CacheIndex(store.root).entries() == []


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
