"""Rebuilding a big COPY after a small change reuses the gzip blocks of the previous layer
(store/blockcache.py), and the layer is exactly the one an empty store packs: same digest,
and a real tool reads it."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, OciImage, make_context, tree, unpack

pytestmark = pytest.mark.tools

DOCKERFILE = "FROM busybox\nCOPY src/ /src/\n"
EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}  # the COPY's new directories: the same mtime


def _context(tmp_path: Path) -> Path:
    rng = random.Random(3)
    words = [rng.randbytes(5).hex() for _ in range(300)]
    files = {"Dockerfile": DOCKERFILE}
    for i in range(600):
        files[f"src/d{i % 12}/f{i:04d}.txt"] = " ".join(rng.choices(words, k=400))
    return make_context(tmp_path, files)


def _layer(oci: Path) -> str:
    digest = OciImage(oci).manifest()["layers"][-1]["digest"]
    assert isinstance(digest, str)
    return digest


def test_rebuilt_layer_equals_a_fresh_pack(
    lb: Layerbuild, new_store: Callable[[str], Layerbuild], tmp_path: Path
) -> None:
    ctx = _context(tmp_path)
    lb.build(ctx, "-t", "r:1", env=EPOCH)
    path = ctx / "src" / "d5" / "f0005.txt"
    path.write_text(path.read_text() + " grown")  # another size: shifts the stream after it
    reused = lb.build_oci(ctx, tag="r:2", env=EPOCH)
    fresh = new_store("fresh").build_oci(ctx, tag="r:2", env=EPOCH)
    assert _layer(reused) == _layer(fresh)
    assert tree(unpack(reused, "2")) == tree(unpack(fresh, "2"))  # umoci reads it
    blocks = lb.store / "cache" / "blocks.db"
    assert blocks.is_file()


def _block_blobs(store: Path) -> set[str]:
    with sqlite3.connect(store / "cache" / "blocks.db") as db:
        blobs = {str(row[0]) for row in db.execute("SELECT DISTINCT blob FROM blocks")}
    db.close()
    return blobs


def test_gc_drops_the_blocks_of_removed_blobs(lb: Layerbuild, tmp_path: Path) -> None:
    lb.build(_context(tmp_path), "-t", "r:1")
    layer = lb.inspect("r:1")["Layers"][-1]
    assert layer in _block_blobs(lb.store)
    lb.ok("rmi", "r:1")
    lb.ok("cache", "prune", "--all")
    on_disk = {f"sha256:{p.name}" for p in (lb.store / "blobs" / "sha256").iterdir()}
    assert layer not in on_disk and layer not in _block_blobs(lb.store)
