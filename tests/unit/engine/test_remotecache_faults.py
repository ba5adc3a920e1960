"""--cache-from that fails is a warning and a miss; --cache-to with ignore-error=true only
warns; faults of the store itself stay errors (remotecache.py, faultplace.py)."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.engine.events import CacheTransfer
from layerbuild.engine.faultplace import names_below, store_fault
from layerbuild.engine.remotecache import (
    CacheSpec,
    cache_image,
    export_caches,
    export_local,
    import_caches,
    parse_cache_spec,
)
from layerbuild.engine.report import BuildReport
from layerbuild.engine.stepcache import StepCache, chain
from layerbuild.errors import CacheError, ExportError, RegistryError, at_path
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import History, ImageConfig
from layerbuild.image.manifest import Layer
from layerbuild.store import Store
from layerbuild.store.cacheindex import CacheIndex, CacheRecord
from layerbuild.store.content import Ingest


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


@pytest.mark.parametrize(
    ("text", "ignore"),
    [
        ("type=registry,ref=localhost:5000/a:c,ignore-error=true", True),
        ("type=registry,ref=localhost:5000/a:c,ignore-error=1", True),
        ("type=local,dest=/c,mode=max,ignore-error=false", False),
        ("type=local,dest=/c", False),
    ],
)
def test_ignore_error_is_read_as_buildkit_reads_it(text: str, ignore: bool) -> None:
    assert parse_cache_spec(text, "to").ignore_error is ignore


def test_ignore_error_must_be_a_boolean() -> None:
    with pytest.raises(CacheError, match="ignore-error must be true or false"):
        parse_cache_spec("type=local,dest=/c,ignore-error=yes please", "to")


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


def test_a_store_fault_behind_a_registry_error_is_found(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "store" / "ingest/x"))
    try:
        try:
            raise full
        except OSError as e:
            raise RegistryError("cannot reach registry") from e
    except RegistryError as wrapped:
        assert store_fault(tmp_path / "store", wrapped) is full
        assert store_fault(tmp_path / "other", wrapped) is None
    assert store_fault(tmp_path, RegistryError("503")) is None
    elsewhere = OSError(errno.ENOSPC, "x", "/src/blob", None, str(tmp_path / "dest" / "t"))
    assert names_below(elsewhere, tmp_path / "dest") and not names_below(elsewhere, tmp_path / "s")


def _export(store: Store, spec: CacheSpec) -> tuple[list[str], list[CacheTransfer]]:
    notes: list[str] = []
    outcomes: list[CacheTransfer] = []
    steps = [{"stage": "s", "key": "sha256:" + "2" * 64, "parent": "sha256:" + "3" * 64}]
    export_caches(store, [spec], steps, "s", [], None, notes.append, outcomes.append)
    return notes, outcomes


def test_a_failed_export_with_ignore_error_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    dest = tmp_path / "file" / "cache"
    spec = parse_cache_spec(f"type=local,dest={dest},ignore-error=true", "to")
    notes, outcomes = _export(Store.open(tmp_path / "store"), spec)
    assert [n for n in notes if n.startswith("warning:")] == [
        next(n for n in notes if n.startswith(f"warning: cache export to {dest} failed: "))
    ]
    assert [(o.direction, o.status) for o in outcomes] == [("export", "failed")]


def test_a_failed_export_without_ignore_error_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    spec = parse_cache_spec(f"type=local,dest={tmp_path / 'file' / 'cache'}", "to")
    outcomes: list[CacheTransfer] = []
    store = Store.open(tmp_path / "s")
    with pytest.raises(ExportError, match=r"cache export to .* failed: .*Not a directory") as e:
        export_caches(store, [spec], [], "s", [], None, print, outcomes.append)
    assert e.value.exit_code == 7 and "the image was built and tagged" in str(e.value.hint)
    assert [o.status for o in outcomes] == ["failed"]


def test_the_report_lists_imports_and_exports() -> None:
    report = BuildReport()
    report(CacheTransfer("import", "reg/app:cache", "failed", reason="cannot reach registry"))
    report(CacheTransfer("import", "/c", "imported", 3))
    report(CacheTransfer("export", "/d", "exported", 4))
    obj = report.to_json()
    failed = {"ref": "reg/app:cache", "status": "failed", "records": 0}
    assert obj["cache_imports"] == [
        failed | {"reason": "cannot reach registry"},
        {"ref": "/c", "status": "imported", "records": 3, "reason": ""},
    ]
    exported = {"ref": "/d", "status": "exported", "records": 4, "reason": ""}
    assert obj["cache_exports"] == [exported]
    assert BuildReport.from_json(obj).to_json()["cache_imports"] == obj["cache_imports"]
    assert list(obj)[:4] == ["image", "seconds", "summary", "steps"]  # the older fields stay
