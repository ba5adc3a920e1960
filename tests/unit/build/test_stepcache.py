"""StepCache (lookup, record, miss reasons) and the remote cache format, on a real store."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from layerbuild.build.remotecache import (
    CACHE_CONFIG,
    CacheError,
    cache_image,
    export_local,
    import_local,
    parse_cache_spec,
    select_records,
)
from layerbuild.build.stepcache import StepCache, chain
from layerbuild.digest import Digest, sha256_bytes
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey, explain
from layerbuild.store import Store
from layerbuild.store.cacheindex import CacheIndex


def _layer(store: Store, data: bytes) -> Layer:
    return Layer(sha256_bytes(data), store.content.put_bytes(data), len(data), mt.OCI_LAYER)


def _run_key(parent: str, env: dict[str, str]) -> CacheKey:
    return chain(parent, [("instruction", "RUN make"), ("env", json.dumps(sorted(env.items())))])


def test_lookup_hits_a_recorded_step_and_touches_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    cache = StepCache(store, "Dockerfile|None")
    key = chain("sha256:" + "0" * 64, [("instruction", "COPY a /a")])
    assert cache.lookup("s", key) is None
    cache.record(key, _layer(store, b"l"), ImageConfig())
    path = cache.index._path(key.digest)
    os.utime(path, (1000, 1000))
    record = cache.lookup("s", key)
    assert record is not None and record.description == "COPY a /a"
    assert path.stat().st_mtime > 1000


def test_a_record_whose_blob_is_gone_misses(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    cache = StepCache(store, "id")
    key = chain("p", [("instruction", "RUN x")])
    layer = _layer(store, b"gone")
    cache.record(key, layer, ImageConfig())
    store.content.delete(layer.digest)
    assert cache.lookup("s", key) is None


def test_no_cache_and_no_cache_filter_never_hit(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    key = chain("p", [("instruction", "ENV A=1")])
    StepCache(store, "id").record(key, None, ImageConfig())
    assert StepCache(store, "id", disabled=True).lookup("s", key) is None
    assert StepCache(store, "id", disabled_stages=frozenset({"s"})).lookup("s", key) is None
    assert StepCache(store, "id", disabled_stages=frozenset({"t"})).lookup("s", key) is not None


def test_reason_names_the_build_arg_a_run_sees(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    first = StepCache(store, "id")
    old = _run_key("p", {"VERSION": "1", "PATH": "/bin"})
    first.record(old, None, ImageConfig())
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
    for stage, text, data in [
        ("a", "COPY x /x", b"x"),
        ("b", "ENV A=1", None),
        ("b", "RUN y", b"y"),
    ]:
        key = chain(parent, [("instruction", text)])
        cache.record(key, _layer(store, data) if data else None, ImageConfig())
        cache.note_step(stage, len(steps) + 2, key, 0.1, hit=False)
        steps.append(cache.steps[-1])
        parent = key.digest
    return steps


def test_local_export_then_import_into_a_fresh_store(tmp_path: Path) -> None:
    src = Store.open(tmp_path / "src")
    steps = _build_records(src)
    last = CacheIndex(src.root).get_digest(Digest(str(steps[2]["key"])))
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
        got = CacheIndex(dest.root).get_digest(record.key.digest)
        assert got is not None and got.layer == record.layer
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
    assert import_local(Store.open(tmp_path / "s"), tmp_path / "nothing", notes.append) == 0
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
