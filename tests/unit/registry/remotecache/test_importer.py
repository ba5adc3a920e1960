"""--cache-from: records and blobs into a fresh store; a source that fails is a warning and a
miss, faults of the store itself stay errors (registry/remotecache/importer.py)."""

from __future__ import annotations

import errno
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.engine.events import CacheTransfer
from layerbuild.engine.stepcache import StepCache, chain
from layerbuild.errors import CacheError
from layerbuild.hosterrors import at_path
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import History, ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey
from layerbuild.registry.remotecache.exporter import export_local, select_records
from layerbuild.registry.remotecache.importer import import_caches, import_local
from layerbuild.registry.remotecache.records import CACHE_CONFIG, cache_image
from layerbuild.registry.remotecache.spec import parse_cache_spec
from layerbuild.store import Store
from layerbuild.store.cacheindex import CacheIndex, CacheRecord
from layerbuild.store.ingest import Ingest
from tests.support.cachesteps import build_records, record_of


def _records(store: Store) -> list[CacheRecord]:
    """Two recorded steps, each with a layer: `COPY a` then `RUN b` on top of it."""
    cache = StepCache(store, "id")
    parent, config = "sha256:" + "1" * 64, ImageConfig()
    for text, data in [("COPY a /a", b"layer a"), ("RUN b", b"layer b")]:
        layer = Layer(sha256_bytes(data), store.content.put_bytes(data), len(data), mt.OCI_LAYER)
        key = chain(parent, [("instruction", text)])
        assert cache.lookup("s", key, config) is None
        config = config.with_layer(layer.diff_id, History(created_by=text))
        cache.record(key, layer, config)
        parent = key.digest
    return [record for _, record in CacheIndex(store.root).records()]


def _exported(tmp_path: Path) -> Path:
    src = Store.open(tmp_path / "src")
    export_local(src, cache_image(src, _records(src), "max"), tmp_path / "cache")
    return tmp_path / "cache"


def _import(store: Store, src: Path) -> tuple[int, list[str], list[CacheTransfer]]:
    notes: list[str] = []
    outcomes: list[CacheTransfer] = []
    spec = parse_cache_spec(f"type=local,src={src}", "from")
    added = import_caches(store, [spec], None, notes.append, outcomes.append)
    return added, notes, outcomes


def _blob(cache: Path, data: bytes) -> Path:
    return cache / "blobs" / "sha256" / sha256_bytes(data).hex


def test_a_good_import_is_reported(tmp_path: Path) -> None:
    cache = _exported(tmp_path)
    added, _, outcomes = _import(Store.open(tmp_path / "dest"), cache)
    assert added == 2
    assert outcomes == [CacheTransfer("import", str(cache), "imported", 2)]


def test_a_missing_directory_is_a_note_and_reported_as_none(tmp_path: Path) -> None:
    added, notes, outcomes = _import(Store.open(tmp_path / "dest"), tmp_path / "nothing")
    assert added == 0 and not any(n.startswith("warning:") for n in notes)
    assert outcomes == [CacheTransfer("import", str(tmp_path / "nothing"), "none")]


def _replace_manifest(cache: Path, index: dict[str, Any], manifest: dict[str, Any]) -> None:
    """Make `manifest` the cache's, stored under its own digest (so it verifies)."""
    body = json.dumps(manifest).encode()
    _blob(cache, body).write_bytes(body)
    index["manifests"][0].update(digest=str(sha256_bytes(body)), size=len(body))
    (cache / "index.json").write_text(json.dumps(index))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("index", "is not a cache written by --cache-to"),
        ("index-type", "is not a cache written by --cache-to"),
        ("manifest", "cache manifest of"),
        ("config", "is corrupt"),
        ("config-format", "is damaged"),
        ("layer", "is corrupt"),
        ("lost-layer", "lacks blob"),
        ("layer-dir", "cannot be read"),
    ],
)
def test_a_broken_local_cache_is_a_warning_and_installs_nothing(
    tmp_path: Path, damage: str, reason: str
) -> None:
    cache = _exported(tmp_path)
    index = json.loads((cache / "index.json").read_text())
    manifest_path = cache / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]
    manifest = json.loads(manifest_path.read_bytes())
    if damage == "index":
        (cache / "index.json").write_text('{"manifests": [{"mediaType": ')
    elif damage == "index-type":
        (cache / "index.json").write_text('{"manifests": 5}')
    elif damage == "manifest":  # valid JSON of the wrong shape, under its own digest
        _replace_manifest(cache, index, {"config": manifest["config"], "layers": 5})
    elif damage == "config":  # cut short: does not verify
        config = cache / "blobs" / "sha256" / manifest["config"]["digest"][7:]
        config.write_bytes(config.read_bytes()[:20])
    elif damage == "config-format":  # verifies, but holds no records
        body = b'{"records": 5, "version": 2}'
        _blob(cache, body).write_bytes(body)
        manifest["config"].update(digest=str(sha256_bytes(body)), size=len(body))
        _replace_manifest(cache, index, manifest)
    elif damage == "layer":  # the second layer only: the first one's record must not stay
        _blob(cache, b"layer b").write_bytes(b"layer B")
    elif damage == "lost-layer":
        _blob(cache, b"layer b").unlink()
    else:
        _blob(cache, b"layer b").unlink()
        _blob(cache, b"layer b").mkdir()
    dest = Store.open(tmp_path / "dest")
    added, notes, outcomes = _import(dest, cache)
    assert added == 0
    warning = f"warning: cache import from {cache} failed: "
    assert [n for n in notes if n.startswith("warning:")] == [
        next(n for n in notes if n.startswith(warning) and n.endswith("; building without it"))
    ]
    assert [(o.status, o.records) for o in outcomes] == [("failed", 0)]
    assert reason in outcomes[0].reason
    assert list(CacheIndex(dest.root).records()) == []


def test_a_full_disk_in_the_store_during_an_import_stays_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _exported(tmp_path)

    def full(self: Ingest, data: bytes) -> int:
        blob = tmp_path / "dest" / "ingest" / "blob.tmp"
        raise at_path(OSError(errno.ENOSPC, "No space left on device"), blob)

    monkeypatch.setattr(Ingest, "write", full)
    dest = Store.open(tmp_path / "dest")
    with pytest.raises(OSError) as e:
        _import(dest, cache)
    assert e.value.errno == errno.ENOSPC


def test_local_export_then_import_into_a_fresh_store(tmp_path: Path) -> None:
    src = Store.open(tmp_path / "src")
    steps = build_records(src)
    last = record_of(src, steps[2])
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
    steps = build_records(src)
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
    steps = build_records(src)
    records = select_records(CacheIndex(src.root), steps, "b", [], "max")
    export_local(src, cache_image(src, records, "max"), tmp_path / "cache")
    blob = tmp_path / "cache" / "blobs" / "sha256" / sha256_bytes(b"y").hex
    blob.write_bytes(b"z")
    dest = Store.open(tmp_path / "dest")
    with pytest.raises(CacheError, match="corrupt"):
        import_local(dest, tmp_path / "cache", print)
    assert not dest.content.has(sha256_bytes(b"y"))
