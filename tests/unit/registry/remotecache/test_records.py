"""The cache image written from records and read back (registry/remotecache/records.py)."""

from __future__ import annotations

import json
from pathlib import Path

from layerbuild.image.manifest import Manifest
from layerbuild.registry.remotecache.exporter import select_records
from layerbuild.registry.remotecache.records import cache_image, read_records
from layerbuild.store import Store
from layerbuild.store.cacheindex import CacheIndex
from tests.support.cachesteps import build_records


def test_records_without_parent_links_are_not_imported(tmp_path: Path) -> None:
    """A cache of format 1 is noted and not used; in a format 2 cache, a record without a
    parent link or whose config does not end with its layer is skipped."""
    src = Store.open(tmp_path / "src")
    records = select_records(CacheIndex(src.root), build_records(src), "b", [], "max")
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
