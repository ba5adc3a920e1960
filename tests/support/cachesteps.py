"""Recorded build steps for the remote cache tests: a store whose cache index holds the records
of `COPY x` (stage a), `ENV A=1` and `RUN y` (stage b), as a build would leave them.

Name: build_records(store) -> the build's step entries; record_of(store, step) -> its record;
      layer_of, on_parent, ran: one step's layer, config and record, as the executor makes them
Scope: tests of registry/remotecache (select, export, import, read back) and engine/stepcache.
Depends: engine/stepcache (the executor's own way of recording steps) and a real Store.
"""

from __future__ import annotations

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.engine.stepcache import StepCache, chain
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import History, ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey
from layerbuild.store import Store
from layerbuild.store.cacheindex import CacheIndex, CacheRecord

BASE = ImageConfig()


def layer_of(store: Store, data: bytes) -> Layer:
    return Layer(sha256_bytes(data), store.content.put_bytes(data), len(data), mt.OCI_LAYER)


def on_parent(parent: ImageConfig, layer: Layer | None, text: str = "") -> ImageConfig:
    """The config a step gives on `parent`: its layer (if any) and a history entry."""
    entry = History(created_by=text, created="2026-01-01T00:00:00Z", empty_layer=layer is None)
    if layer is None:
        return parent.with_history(entry)
    return parent.with_layer(layer.diff_id, entry)


def ran(cache: StepCache, key: CacheKey, parent: ImageConfig, layer: Layer | None) -> ImageConfig:
    """A step as the executor runs it: looked up on `parent`, missed, recorded."""
    assert cache.lookup("s", key, parent) is None
    config = on_parent(parent, layer)
    cache.record(key, layer, config)
    return config


def build_records(store: Store) -> list[dict[str, object]]:
    cache = StepCache(store, "id")
    steps: list[dict[str, object]] = []
    parent = "sha256:" + "1" * 64
    config = BASE
    for stage, text, data in [
        ("a", "COPY x /x", b"x"),
        ("b", "ENV A=1", None),
        ("b", "RUN y", b"y"),
    ]:
        key = chain(parent, [("instruction", text)])
        config = ran(cache, key, config, layer_of(store, data) if data else None)
        cache.note_step(stage, len(steps) + 2, key, 0.1, hit=False)
        steps.append(cache.steps[-1])
        parent = key.digest
    return steps


def record_of(store: Store, step: dict[str, object]) -> CacheRecord | None:
    key, parent = Digest(str(step["key"])), Digest(str(step["parent"]))
    return CacheIndex(store.root).get_digest(key, parent)
