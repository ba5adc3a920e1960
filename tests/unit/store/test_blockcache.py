"""BlockCache: a block is served only while the blob it lies in holds exactly its bytes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from layerbuild.digest import Digest
from layerbuild.image.compress import BlockRecord
from layerbuild.store.blockcache import BlockCache


def _blob(root: Path, data: bytes) -> Digest:
    digest = Digest("sha256:" + hashlib.sha256(data).hexdigest())
    (root / digest.hex).write_bytes(data)
    return digest


def _cache(tmp_path: Path, notes: list[str] | None = None) -> BlockCache:
    blobs = tmp_path / "blobs"
    blobs.mkdir(exist_ok=True)
    return BlockCache(
        tmp_path / "cache" / "blocks.db",
        lambda d: blobs / d.hex,
        note=(notes.append if notes is not None else None),
    )


def _record(key: bytes, data: bytes, offset: int) -> BlockRecord:
    block = data[offset : offset + 10]
    return BlockRecord(key, offset, len(block), hashlib.sha256(block).digest())


def test_recorded_blocks_are_served_across_instances(tmp_path: Path) -> None:
    data = os.urandom(100)
    with _cache(tmp_path) as cache:
        blob = _blob(tmp_path / "blobs", data)
        cache.record(blob, [_record(b"k1", data, 10), _record(b"k2", data, 50)])
        block = data[10:20]
        assert cache.get(b"k1") == (block, hashlib.sha256(block).digest())
    with _cache(tmp_path) as cache:
        found = cache.get(b"k2")
        assert found is not None and found[0] == data[50:60]
        assert cache.get(b"unknown") is None
        assert cache.hits == 1


def test_a_blob_that_changed_or_went_is_not_believed(tmp_path: Path) -> None:
    data = os.urandom(100)
    with _cache(tmp_path) as cache:
        blob = _blob(tmp_path / "blobs", data)
        cache.record(blob, [_record(b"k1", data, 10), _record(b"k2", data, 50)])
        damaged = bytearray(data)
        damaged[12] ^= 0xFF
        (tmp_path / "blobs" / blob.hex).write_bytes(bytes(damaged))
    with _cache(tmp_path) as cache:
        assert cache.get(b"k1") is None  # checked against the block's sha256
    (tmp_path / "blobs" / blob.hex).unlink()  # gc removed the blob
    with _cache(tmp_path) as cache:
        assert cache.get(b"k2") is None
        assert cache.get(b"k1") is None and cache.hits == 0


def test_an_unusable_database_only_costs_deflating(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file where the directory should be")
    notes: list[str] = []
    with _cache(tmp_path, notes) as cache:
        cache.record(Digest("sha256:" + "0" * 64), [_record(b"k", b"x" * 20, 0)])
        assert cache.get(b"k") is None
    assert len(notes) == 1 and "cannot be used" in notes[0]


def test_forgetting_a_blob_drops_its_rows(tmp_path: Path) -> None:
    data = os.urandom(100)
    with _cache(tmp_path) as cache:
        blob = _blob(tmp_path / "blobs", data)
        cache.record(blob, [_record(b"k1", data, 10)])
        cache.forget_blobs([blob])
        assert cache.get(b"k1") is None


def test_counters_are_appended_to_the_stats_file_once(tmp_path: Path) -> None:
    """How benchmarks see what a build deflated again ($LAYERBUILD_BLOCKCACHE_STATS)."""
    data = os.urandom(100)
    stats = tmp_path / "stats.jsonl"
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    cache = BlockCache(tmp_path / "blocks.db", lambda d: blobs / d.hex, stats_file=stats)
    cache.record(_blob(blobs, data), [_record(b"k1", data, 10)])
    assert cache.get(b"k1") is not None
    cache.deflated(4096)
    cache.deflated(100)
    cache.close()
    cache.close()
    lines = stats.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"hits": 1, "deflated_blocks": 2, "deflated_bytes": 4196}
    ]


def test_a_preloaded_blobs_blocks_are_served_and_still_checked(tmp_path: Path) -> None:
    data, other = os.urandom(100), os.urandom(100)
    with _cache(tmp_path) as cache:
        blob = _blob(tmp_path / "blobs", data)
        elsewhere = _blob(tmp_path / "blobs", other)
        cache.record(blob, [_record(b"k1", data, 10), _record(b"k2", data, 50)])
        cache.record(elsewhere, [_record(b"k3", other, 0)])
    with _cache(tmp_path) as cache:
        cache.preload(blob)
        assert cache.get(b"k1") == (data[10:20], hashlib.sha256(data[10:20]).digest())
        assert cache.get(b"k3") is not None  # not preloaded: asked for on its own
        damaged = bytearray(data)
        damaged[55] ^= 0xFF
        (tmp_path / "blobs" / blob.hex).write_bytes(bytes(damaged))
        cache.close()  # its descriptors: the damaged blob is opened again
    with _cache(tmp_path) as cache:
        cache.preload(blob)
        assert cache.get(b"k2") is None  # a preloaded row is checked like any other
        assert cache.get(b"k2") is None and cache.hits == 0
