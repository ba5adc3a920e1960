"""StepCache (lookup, record, miss reasons) and the remote cache format, on a real store."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.engine.remotecache import (
    CACHE_CONFIG,
    cache_image,
    export_local,
    import_local,
    parse_cache_spec,
    read_records,
    select_records,
)
from layerbuild.engine.stepcache import StepCache, chain
from layerbuild.errors import CacheError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import History, ImageConfig
from layerbuild.image.manifest import Layer, Manifest
from layerbuild.plan.keys import CacheKey, explain
from layerbuild.store import Store
from layerbuild.store.cacheindex import CacheIndex, CacheRecord, result_digest

BASE = ImageConfig()


def _layer(store: Store, data: bytes) -> Layer:
    return Layer(sha256_bytes(data), store.content.put_bytes(data), len(data), mt.OCI_LAYER)


def _run_key(parent: str, env: dict[str, str]) -> CacheKey:
    return chain(parent, [("instruction", "RUN make"), ("env", json.dumps(sorted(env.items())))])


def _on(parent: ImageConfig, layer: Layer | None, text: str = "") -> ImageConfig:
    """The config a step gives on `parent`: its layer (if any) and a history entry."""
    entry = History(created_by=text, created="2026-01-01T00:00:00Z", empty_layer=layer is None)
    if layer is None:
        return parent.with_history(entry)
    return parent.with_layer(layer.diff_id, entry)


def _ran(cache: StepCache, key: CacheKey, parent: ImageConfig, layer: Layer | None) -> ImageConfig:
    """A step as the executor runs it: looked up on `parent`, missed, recorded."""
    assert cache.lookup("s", key, parent) is None
    config = _on(parent, layer)
    cache.record(key, layer, config)
    return config


def test_lookup_hits_a_recorded_step_and_touches_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    cache = StepCache(store, "Dockerfile|None")
    key = chain("sha256:" + "0" * 64, [("instruction", "COPY a /a")])
    _ran(cache, key, BASE, _layer(store, b"l"))
    path = cache.index.path(key.digest, result_digest(BASE))
    os.utime(path, (1000, 1000))
    record = cache.lookup("s", key, BASE)
    assert record is not None and record.description == "COPY a /a"
    assert path.stat().st_mtime > 1000


def test_a_record_is_only_a_hit_on_the_parent_result_it_was_made_on(tmp_path: Path) -> None:
    """The same key on another result of the step before (its output not reproducible)
    misses with a reason, and its record is kept beside the first, not over it."""
    store = Store.open(tmp_path)
    cache = StepCache(store, "id")
    first = _on(BASE, _layer(store, b"big 1"))
    second = _on(BASE, _layer(store, b"big 2"))
    key = chain("p", [("instruction", "RUN md5sum /big > /sum")])
    _ran(cache, key, first, _layer(store, b"sum 1"))
    assert cache.lookup("s", key, second) is None
    assert "not reproducible" in cache.reason("s", 3, key)
    cache.record(key, _layer(store, b"sum 2"), _on(second, _layer(store, b"sum 2")))
    one, two = cache.lookup("s", key, first), cache.lookup("s", key, second)
    assert one is not None and two is not None
    assert (one.layer, two.layer) == (_layer(store, b"sum 1"), _layer(store, b"sum 2"))
    # the times in the config are not part of the result: a reproducible rebuild still hits
    later = replace(
        first, history=tuple(replace(h, created="2027-01-01T00:00:00Z") for h in first.history)
    )
    assert cache.lookup("s", key, later) is not None


def test_a_damaged_or_unfitting_record_is_dropped_with_a_warning(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    warnings: list[str] = []
    cache = StepCache(store, "id", warn=warnings.append)
    key = chain("p", [("instruction", "RUN x")])
    _ran(cache, key, BASE, _layer(store, b"x"))
    path = cache.index.path(key.digest, result_digest(BASE))
    record = json.loads(path.read_bytes())
    record["config"]["rootfs"]["diff_ids"] = [str(sha256_bytes(b"other"))]
    path.write_text(json.dumps(record))
    assert cache.lookup("s", key, BASE) is None
    assert not path.exists() and "not end with its own layer" in warnings[0]
    assert "dropped" in cache.reason("s", 2, key)
    _ran(cache, key, BASE, _layer(store, b"x"))
    path.write_bytes(b"{not json")
    assert cache.lookup("s", key, BASE) is None
    assert not path.exists() and "not a cache record" in warnings[1]


def test_a_record_whose_blob_is_gone_misses(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    cache = StepCache(store, "id")
    key = chain("p", [("instruction", "RUN x")])
    layer = _layer(store, b"gone")
    _ran(cache, key, BASE, layer)
    store.content.delete(layer.digest)
    assert cache.lookup("s", key, BASE) is None
    assert cache.reason("s", 2, key) == "no previous build of this step"  # not "reproducible"


def test_a_layer_not_in_the_store_is_never_recorded(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    cache = StepCache(store, "id")
    key = chain("p", [("instruction", "RUN x")])
    layer = Layer(sha256_bytes(b"n"), sha256_bytes(b"n"), 1, mt.OCI_LAYER)
    _ran(cache, key, BASE, layer)
    assert not cache.index.with_key(key.digest)


def test_no_cache_and_no_cache_filter_never_hit(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    key = chain("p", [("instruction", "ENV A=1")])
    _ran(StepCache(store, "id"), key, BASE, None)
    assert StepCache(store, "id", disabled=True).lookup("s", key, BASE) is None
    nocache = StepCache(store, "id", disabled_stages=frozenset({"s"}))
    assert nocache.lookup("s", key, BASE) is None
    other = StepCache(store, "id", disabled_stages=frozenset({"t"}))
    assert other.lookup("s", key, BASE) is not None


def test_reason_names_the_build_arg_a_run_sees(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    first = StepCache(store, "id")
    old = _run_key("p", {"VERSION": "1", "PATH": "/bin"})
    _ran(first, old, BASE, None)
    first.note_step("s", 2, old, 1.0, hit=False)
    first.finish()
    second = StepCache(store, "id")
    new = _run_key("p", {"VERSION": "2", "PATH": "/bin"})
    assert second.reason("s", 2, new) == "build arg VERSION changed"
    moved = _run_key("q", {"VERSION": "1", "PATH": "/bin"})
    assert second.reason("s", 2, moved) == "parent step missed"


def test_explain_names_the_changed_file() -> None:
    old = (("parent", "p"), ("sources", "a"))
    new = (("parent", "p"), ("sources", "b"))
    files_old = {"src/app.py": "1", "src/b": "2"}
    files_new = {"src/app.py": "9", "src/b": "2"}
    assert explain(old, new, files_old=files_old, files_new=files_new) == "/src/app.py changed"


@pytest.mark.parametrize(
    ("text", "direction", "kind", "location", "mode"),
    [
        ("type=local,dest=/c,mode=max", "to", "local", "/c", "max"),
        ("type=local,src=/c", "from", "local", "/c", "min"),
        (
            "type=registry,ref=localhost:5000/app:cache",
            "from",
            "registry",
            "localhost:5000/app:cache",
            "min",
        ),
        (
            "ref=localhost:5000/app:cache,mode=max",
            "to",
            "registry",
            "localhost:5000/app:cache",
            "max",
        ),
    ],
)
def test_parse_cache_spec(text: str, direction: str, kind: str, location: str, mode: str) -> None:
    spec = parse_cache_spec(text, direction)
    assert (spec.kind, spec.location, spec.mode) == (kind, location, mode)


@pytest.mark.parametrize(
    "text", ["type=local,src=/c", "type=s3,dest=x", "type=local,dest=/c,mode=all", "dest"]
)
def test_parse_cache_spec_rejects(text: str) -> None:
    with pytest.raises(CacheError):
        parse_cache_spec(text, "to")


def _build_records(store: Store) -> list[dict[str, object]]:
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
        config = _ran(cache, key, config, _layer(store, data) if data else None)
        cache.note_step(stage, len(steps) + 2, key, 0.1, hit=False)
        steps.append(cache.steps[-1])
        parent = key.digest
    return steps


def _record_of(store: Store, step: dict[str, object]) -> CacheRecord | None:
    key, parent = Digest(str(step["key"])), Digest(str(step["parent"]))
    return CacheIndex(store.root).get_digest(key, parent)


def test_local_export_then_import_into_a_fresh_store(tmp_path: Path) -> None:
    src = Store.open(tmp_path / "src")
    steps = _build_records(src)
    last = _record_of(src, steps[2])
    final_layer = last.layer if last is not None else None
    assert final_layer is not None
    index = CacheIndex(src.root)
    assert len(select_records(index, steps, "b", [final_layer], "min")) == 2
    records = select_records(index, steps, "b", [final_layer], "max")
    assert len(records) == 3
    desc = cache_image(src, records, "max")
    export_local(src, desc, tmp_path / "cache")
    manifest = json.loads((tmp_path / "cache" / "blobs" / "sha256" / desc.digest.hex).read_bytes())
    assert manifest["config"]["mediaType"] == CACHE_CONFIG
    assert len(manifest["layers"]) == 2
    dest = Store.open(tmp_path / "dest")
    assert import_local(dest, tmp_path / "cache", print) == 3
    for record in records:
        assert record.parent is not None
        got = CacheIndex(dest.root).get_digest(record.key.digest, record.parent)
        assert got is not None and got.layer == record.layer and got.parent == record.parent
        assert got.layer is None or dest.content.has(got.layer.digest)
    assert import_local(dest, tmp_path / "cache", print) == 0  # already there


def test_import_skips_records_whose_key_does_not_match_their_inputs(tmp_path: Path) -> None:
    src = Store.open(tmp_path / "src")
    steps = _build_records(src)
    records = select_records(CacheIndex(src.root), steps, "b", [], "max")
    # each record claims inputs its key digest was not made from
    evil = (("instruction", "RUN evil"),)
    forged = [replace(r, key=CacheKey(r.key.digest, evil)) for r in records]
    export_local(src, cache_image(src, forged, "max"), tmp_path / "cache")
    assert import_local(Store.open(tmp_path / "dest"), tmp_path / "cache", print) == 0


def test_import_of_a_missing_cache_is_a_note(tmp_path: Path) -> None:
    notes: list[str] = []
    assert import_local(Store.open(tmp_path / "s"), tmp_path / "nothing", notes.append) is None
    assert "no cache" in notes[0]


def test_import_rejects_a_corrupt_layer_blob(tmp_path: Path) -> None:
    src = Store.open(tmp_path / "src")
    steps = _build_records(src)
    records = select_records(CacheIndex(src.root), steps, "b", [], "max")
    export_local(src, cache_image(src, records, "max"), tmp_path / "cache")
    blob = tmp_path / "cache" / "blobs" / "sha256" / sha256_bytes(b"y").hex
    blob.write_bytes(b"z")
    dest = Store.open(tmp_path / "dest")
    with pytest.raises(CacheError, match="corrupt"):
        import_local(dest, tmp_path / "cache", print)
    assert not dest.content.has(sha256_bytes(b"y"))


def test_records_without_parent_links_are_not_imported(tmp_path: Path) -> None:
    """A cache of format 1 is noted and not used; in a format 2 cache, a record without a
    parent link or whose config does not end with its layer is skipped."""
    src = Store.open(tmp_path / "src")
    records = select_records(CacheIndex(src.root), _build_records(src), "b", [], "max")
    desc = cache_image(src, records, "max")
    manifest = Manifest.from_bytes(src.content.read_bytes(desc.digest))
    config = json.loads(src.content.read_bytes(manifest.config.digest))
    notes: list[str] = []
    assert len(read_records(manifest, json.dumps(config).encode(), "c", notes.append)) == 3
    unlinked, unfitting = config["records"][0], config["records"][2]
    del unlinked["parent"]
    unfitting["config"]["rootfs"]["diff_ids"] = []
    kept = read_records(manifest, json.dumps(config).encode(), "c", notes.append)
    assert [r.description for r in kept] == ["ENV A=1"] and notes == []
    config["version"] = 1
    assert read_records(manifest, json.dumps(config).encode(), "c", notes.append) == []
    assert "older format" in notes[0]
