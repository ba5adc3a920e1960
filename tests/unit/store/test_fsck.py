"""fsck: each kind of damage is found with its message, repair drops it and nothing sound, and
the check and the repair take the store lock as a build and gc do."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import pytest

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.errors import StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Layer, Manifest
from layerbuild.plan.keys import CacheKey
from layerbuild.store import Store
from layerbuild.store.cacheindex import CacheIndex, CacheRecord, result_digest
from layerbuild.store.fsck import check, run
from layerbuild.store.fsckproblem import (
    DROP_ENTRY,
    DROP_RECORD,
    NOTHING,
    REMOVE_BLOB,
    REMOVE_PATH,
    UNTAG,
    Problem,
)
from layerbuild.store.fsckrecords import check_record, check_records
from layerbuild.store.images import tag, write_image
from layerbuild.store.locking import GcRoot


def _layer(store: Store, data: bytes) -> Layer:
    # fsck never looks inside a layer: any blob stands in for one
    return Layer(sha256_bytes(data), store.content.put_bytes(data), len(data), mt.OCI_LAYER)


def _image(store: Store, *contents: bytes) -> tuple[Descriptor, list[Layer]]:
    layers = [_layer(store, c) for c in contents]
    config = ImageConfig(diff_ids=tuple(x.diff_id for x in layers))
    return write_image(store, config, layers), layers


def _record(store: Store, name: str, layer: Layer | None, **kw: object) -> Path:
    index = CacheIndex(store.root)
    key = CacheKey.of([("instruction", f"RUN {name}")])
    config = ImageConfig(diff_ids=(layer.diff_id,) if layer else ())
    parent = result_digest(ImageConfig())
    return index.put(CacheRecord(key, layer, config, parent=parent, **kw))  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A sound store: a tagged image of two layers, whose second step is cached."""
    s = Store.open(tmp_path / "store")
    desc, layers = _image(s, b"base layer", b"step layer")
    tag(s, "app:1", desc)
    _record(s, "step", layers[1], files={"/a": "sha256:" + "0" * 64})
    _record(s, "env", None)
    return s


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _blob(store: Store, digest: Digest) -> Path:
    path = store.content.path(digest)
    path.chmod(0o644)
    return path


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _app(store: Store) -> tuple[Descriptor, Manifest]:
    desc = store.refs.get("app:1")
    assert desc is not None
    return desc, Manifest.from_bytes(store.content.read_bytes(desc.digest))


def _kinds(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.kind, p.action) for p in problems]


def _repair_and_recheck(store: Store) -> tuple[tuple[Problem, ...], set[Digest]]:
    before = set(store.content.digests())
    result = run(store, fix=True)
    assert result.remaining == ()
    assert check(store) == []
    return result.repaired, before - set(store.content.digests())


def test_a_sound_store_is_clean(store: Store) -> None:
    assert check(store) == []
    assert check(store, quick=True) == []
    result = run(store)
    assert result.found == result.remaining == result.repaired == ()


def test_a_flipped_byte_in_a_layer_condemns_it_and_what_needs_it(store: Store) -> None:
    desc, manifest = _app(store)
    bad = manifest.layers[1].digest
    _flip(_blob(store, bad))
    problems = check(store)
    assert _kinds(problems) == [
        ("corrupt blob", REMOVE_BLOB),
        ("broken manifest", REMOVE_BLOB),
        ("dangling name", UNTAG),
        ("broken cache record", DROP_RECORD),
    ]
    assert problems[0].where == f"blobs/sha256/{bad.hex}"
    assert "hashes to sha256:" in problems[0].what and "not to its name" in problems[0].what
    assert problems[1].what == f"its layer {bad} is corrupt"
    assert problems[2].where == "index.json: app:1" and "which is broken" in problems[2].what
    assert problems[3].what == f"layer {bad} is corrupt"
    assert problems[0].line() == (
        f"corrupt blob: blobs/sha256/{bad.hex}: {problems[0].what} (--repair would remove "
        "the blob)"
    )
    assert check(store, quick=True) == []  # --quick trusts layer blobs

    repaired, removed = _repair_and_recheck(store)
    assert len(repaired) == 4
    assert removed == {bad, desc.digest}  # the base layer and the config are sound: kept
    assert store.refs.get("app:1") is None
    env = CacheKey.of([("instruction", "RUN env")]).digest
    assert CacheIndex(store.root).get_digest(env, result_digest(ImageConfig())) is not None


def test_a_blob_a_manifest_needs_is_missing(store: Store) -> None:
    desc, manifest = _app(store)
    store.content.delete(manifest.layers[0].digest)
    problems = check(store)
    assert _kinds(problems) == [("broken manifest", REMOVE_BLOB), ("dangling name", UNTAG)]
    assert problems[0].what == f"its layer {manifest.layers[0].digest} is not in the store"
    _, removed = _repair_and_recheck(store)
    assert removed == {desc.digest}


def test_a_truncated_manifest_is_corrupt_even_with_quick(store: Store) -> None:
    desc, _ = _app(store)
    path = _blob(store, desc.digest)
    path.write_bytes(path.read_bytes()[:40])
    for quick in (False, True):
        problems = check(store, quick=quick)
        assert _kinds(problems) == [("corrupt blob", REMOVE_BLOB), ("dangling name", UNTAG)]
    _, removed = _repair_and_recheck(store)
    assert removed == {desc.digest}


def test_a_manifest_with_a_wrong_size_or_a_config_of_other_layers(store: Store) -> None:
    layers = [_layer(store, b"one")]
    config = ImageConfig(diff_ids=(layers[0].diff_id, layers[0].diff_id))
    data = config.to_bytes()
    config_desc = Descriptor(mt.OCI_CONFIG, store.content.put_bytes(data), len(data))
    wrong_size = Descriptor(mt.OCI_LAYER, layers[0].digest, 99)
    for parts, message in (
        ((wrong_size,), f"its layer {layers[0].digest} is 3 bytes, the descriptor says 99"),
        ((layers[0].descriptor,), "its config lists 2 diff_ids for 1 layers"),
    ):
        digest = store.content.put_bytes(Manifest(config_desc, parts).to_bytes())
        found = [p for p in check(store) if p.target == str(digest)]
        assert [p.what for p in found] == [message]


def test_a_cache_manifest_config_is_not_judged_as_an_image_config(store: Store) -> None:
    cache_config = b'{"records": []}'
    desc = Descriptor("application/x-cache", store.content.put_bytes(cache_config), 15)
    layer = _layer(store, b"cached")
    store.content.put_bytes(Manifest(desc, (layer.descriptor,)).to_bytes())
    assert check(store) == []


def test_an_index_needs_one_of_its_manifests_not_all(store: Store) -> None:
    desc, _ = _app(store)
    absent = Descriptor(mt.OCI_MANIFEST, sha256_bytes(b"another platform"), 16)
    sparse = store.content.put_bytes(Index((desc, absent)).to_bytes())
    assert check(store) == []
    empty = store.content.put_bytes(Index((absent,)).to_bytes())
    problems = check(store)
    assert [(p.kind, p.target, p.what) for p in problems] == [
        ("broken index", str(empty), "none of its 1 manifests is in the store")
    ]
    store.content.delete(desc.digest)
    assert {p.target for p in check(store) if p.kind == "broken index"} == {
        str(sparse),
        str(empty),
    }


def test_a_manifest_a_live_process_is_still_writing_is_not_judged(store: Store) -> None:
    desc, manifest = _app(store)
    store.content.delete(manifest.layers[0].digest)
    with GcRoot(store.root, [desc.digest]):
        assert check(store) == []
    assert len(check(store)) == 2


def test_a_name_for_a_missing_manifest_and_an_unnamed_entry(store: Store) -> None:
    gone = Descriptor(mt.OCI_MANIFEST, sha256_bytes(b"gone"), 4)
    tag(store, "ghost:1", gone)
    index = json.loads((store.root / "index.json").read_bytes())
    index["manifests"].append(gone.to_json())
    (store.root / "index.json").write_text(json.dumps(index))
    problems = check(store)
    assert [(p.kind, p.where, p.action) for p in problems] == [
        ("dangling name", "index.json: ghost:1", UNTAG),
        ("dangling entry", "index.json: unnamed entry", DROP_ENTRY),
    ]
    assert problems[0].what == f"points at {gone.digest}, which is not in the store"
    repaired, removed = _repair_and_recheck(store)
    assert len(repaired) == 2 and removed == set()
    assert list(store.refs.list()) == ["app:1"] and store.refs.unnamed() == []


def test_an_index_json_that_is_not_json_cannot_be_repaired(store: Store) -> None:
    (store.root / "index.json").write_text("{")
    problems = check(store)
    assert _kinds(problems) == [("broken index.json", NOTHING)]
    assert problems[0].line().endswith("(--repair cannot fix this)")
    result = run(store, fix=True)
    assert result.repaired == () and result.remaining == result.found


def test_a_record_of_a_missing_layer(store: Store) -> None:
    layer = _layer(store, b"soon gone")
    path = _record(store, "gone", layer)
    store.content.delete(layer.digest)
    problems = check(store)
    assert [(p.kind, p.target, p.what) for p in problems] == [
        ("broken cache record", str(path), f"layer {layer.digest} is not in the store")
    ]
    _repair_and_recheck(store)
    assert not path.exists()


def _record_path(store: Store, name: str) -> Path:
    digest = CacheKey.of([("instruction", f"RUN {name}")]).digest
    return CacheIndex(store.root).path(digest, result_digest(ImageConfig()))


def test_a_record_file_that_is_not_json_and_a_summary_without_record(store: Store) -> None:
    keys = CacheIndex(store.root).keys_dir
    junk = keys / "ab" / ("ab" + "1" * 62)
    junk.parent.mkdir()
    junk.write_bytes(b"\x00not json")
    orphan = keys / "cd" / ("cd" + "2" * 62 + ".files")
    orphan.parent.mkdir()
    orphan.write_text("{}")
    problems = check(store)
    assert [(p.kind, p.where, p.action) for p in problems] == [
        ("broken cache record", f"cache/keys/ab/{junk.name}", DROP_RECORD),
        ("orphan file", f"cache/keys/cd/{orphan.name}", REMOVE_PATH),
    ]
    assert problems[0].what.startswith("not a JSON record")
    _repair_and_recheck(store)
    assert not junk.exists() and not orphan.exists()
    assert _record_path(store, "step").exists()


def test_a_record_whose_file_summary_is_lost(store: Store) -> None:
    path = _record_path(store, "step")
    sidecar = path.with_name(path.name + ".files")
    sidecar.unlink()
    problems = check(store)
    assert [(p.kind, p.target) for p in problems] == [("broken cache record", str(path))]
    assert problems[0].what == f"its file summary {sidecar.name} is missing or not JSON"
    _repair_and_recheck(store)
    assert not path.exists() and _record_path(store, "env").exists()


def test_check_record_holds_every_field_check(store: Store) -> None:
    layer = _layer(store, b"layer")
    key = CacheKey.of([("instruction", "RUN x")])
    parent = result_digest(ImageConfig())
    path = CacheIndex(store.root).path(key.digest, parent)
    other = path.with_name("f" * 64 + "." + parent.hex)
    sound = CacheRecord(key, layer, ImageConfig(diff_ids=(layer.diff_id,)), parent=parent)
    forged = CacheKey(Digest("sha256:" + "e" * 64), key.inputs)
    cases = [
        (sound, path, ""),
        (sound, other, f"its file name does not say its key and parent ({key.digest})"),
        (
            dataclasses.replace(sound, parent=None),
            path.with_name(key.digest.hex),
            "a record of an older cache format (no parent link): never used again",
        ),
        (
            dataclasses.replace(sound, key=forged),
            CacheIndex(store.root).path(forged.digest, parent),
            "its key is not the digest of its inputs",
        ),
        (
            dataclasses.replace(sound, config=ImageConfig()),
            path,
            "its config does not end with its own layer",
        ),
        (
            dataclasses.replace(sound, layer=Layer(layer.diff_id, layer.digest, 9, mt.OCI_LAYER)),
            path,
            f"layer {layer.digest} is 5 bytes, the record says 9",
        ),
        (
            dataclasses.replace(sound, layer=Layer(layer.diff_id, layer.digest, 5, "text/plain")),
            path,
            "its layer has media type text/plain",
        ),
    ]
    for record, where, message in cases:
        found = check_record(record, where, store, frozenset())
        assert [p.what for p in found] == ([message] if message else [])
    assert [p.what for p in check_record(sound, path, store, frozenset({layer.digest}))] == [
        f"layer {layer.digest} is corrupt"
    ]


def test_leftovers_of_dead_processes_but_not_of_live_ones(store: Store) -> None:
    root, dead, live = store.root, _dead_pid(), os.getpid()
    made = {
        "ingest": root / "ingest" / f"{dead}-abcd.tmp",
        "scratch": root / "tmp" / f"build-{dead}-xyz",
        "snapshot": root / "snapshots" / f"tmp-{dead}-0a0b",
        "layer snapshot": root / "snapshots" / "layers" / f"tmp-{dead}-0c0d",
        "gc root": root / "roots" / f"{dead}-ff",
        "index temp": root / f".index.json.{dead}-00.tmp",
    }
    for name, path in made.items():
        if name in ("scratch", "snapshot", "layer snapshot"):
            (path / "upper" / "work").mkdir(parents=True)
            (path / "upper" / "work").chmod(0)  # overlay's work/work is mode 000
        else:
            path.write_text("")
    (root / "tmp" / f"build-{live}-mine").mkdir()
    (root / "snapshots" / f"tmp-{live}-mine").mkdir()
    (root / "ingest" / f"{live}-mine.tmp").write_text("")
    problems = check(store)
    assert {(p.kind, p.target) for p in problems} == {
        ("orphan snapshot", str(made["snapshot"])),
        ("orphan snapshot", str(made["layer snapshot"])),
        ("orphan temp", str(made["ingest"])),
        ("orphan temp", str(made["scratch"])),
        ("orphan temp", str(made["gc root"])),
        ("orphan temp", str(made["index temp"])),
    }
    by_target = {p.target: p for p in problems}
    assert by_target[str(made["scratch"])].what == "temp directory of a process that is gone"
    assert by_target[str(made["snapshot"])].where == f"snapshots/tmp-{dead}-0a0b"
    assert all(p.action == REMOVE_PATH for p in problems)
    _repair_and_recheck(store)
    assert not any(p.exists() for p in made.values())
    assert (root / "tmp" / f"build-{live}-mine").is_dir()
    assert (root / "ingest" / f"{live}-mine.tmp").exists()


def test_a_cache_temp_file_is_a_leftover_once_idle_for_an_hour(store: Store) -> None:
    temp = store.root / "cache" / "builds" / ".tmp-abc"
    temp.parent.mkdir(parents=True, exist_ok=True)
    temp.write_text("[")
    assert check(store) == []
    hour_ago = time.time() - 3700
    os.utime(temp, (hour_ago, hour_ago))
    assert [p.where for p in check(store)] == ["cache/builds/.tmp-abc"]


def test_opening_the_store_for_fsck_leaves_the_leftovers_it_reports(tmp_path: Path) -> None:
    Store.open(tmp_path)
    leftover = tmp_path / "snapshots" / f"tmp-{_dead_pid()}-00"
    leftover.mkdir()
    Store.open(tmp_path, clean=False)
    assert leftover.is_dir()
    Store.open(tmp_path)
    assert not leftover.exists()


def _hold_shared(root: str, ready: object, release: object) -> None:
    with Store.open(Path(root)).lock(shared=True):
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


def test_check_runs_beside_a_build_and_repair_waits_for_it(store: Store) -> None:
    desc, _ = _app(store)
    store.content.delete(desc.digest)
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    build = ctx.Process(target=_hold_shared, args=(str(store.root), ready, release))
    build.start()
    assert ready.wait(10)
    try:
        assert len(run(store, timeout=0.2).found) == 1
        with pytest.raises(StoreError, match=f"pid {build.pid}"):
            run(store, fix=True, timeout=0.2)
        assert store.refs.get("app:1") is not None  # nothing repaired without the lock
    finally:
        release.set()
        build.join(10)
    assert len(run(store, fix=True).repaired) == 1


def test_a_record_removed_while_it_is_checked_is_not_damage(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _record_path(store, "env")
    real = Path.read_bytes

    def vanishing(self: Path) -> bytes:
        if self == path:  # a `cache prune` removed it between the listing and the read
            self.unlink()
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", vanishing)
    assert check_records(store, frozenset()) == []
