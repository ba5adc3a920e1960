"""A COPY that misses takes the unchanged files' tar entries from the layer the same step made
in the last build (image/tarsplice.py), and its layer is byte for byte the layer an empty
store packs from the same context: for a changed, added, removed, renamed, chmod'ed and
hard-linked file, with each compression."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, OciImage, make_context, tree, unpack

pytestmark = pytest.mark.tools

DOCKERFILE = "FROM busybox\nCOPY src/ /src/\nCOPY --chmod=600 src/d1/ /d1/\n"
EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}  # the COPY's new directories: the same mtime
AGE_S = 2.3  # past the stat cache's racy margin: the key's digests may be trusted


def _context(tmp_path: Path) -> Path:
    rng = random.Random(12)
    files: dict[str, str | bytes] = {"Dockerfile": DOCKERFILE}
    for i in range(400):
        files[f"src/d{i % 7}/f{i:04d}.txt"] = rng.randbytes(rng.choice((10, 700, 9000))).hex()
    files["src/big.bin"] = rng.randbytes(3 << 20)
    return make_context(tmp_path, files)


def _layers(oci: Path) -> list[str]:
    return [layer["digest"] for layer in OciImage(oci).manifest()["layers"]]


def _edit(ctx: Path, what: str) -> None:
    src = ctx / "src"
    if what == "changed":
        path = src / "d3" / "f0003.txt"
        path.write_text(path.read_text() + "grown")
    elif what == "added":
        (src / "d1" / "new.txt").write_text("new\n")
    elif what == "removed":
        (src / "d2" / "f0002.txt").unlink()
    elif what == "renamed":
        (src / "d4" / "f0004.txt").rename(src / "d4" / "g0004.txt")
    elif what == "mode":
        (src / "d1" / "f0001.txt").chmod(0o755)
    elif what == "hardlink":
        os.link(src / "big.bin", src / "a-big-link.bin")


def _build(lb: Layerbuild, ctx: Path, tag: str, stats: Path, *flags: str) -> Path:
    env = {**EPOCH, "LAYERBUILD_SPLICE_STATS": str(stats)}
    return lb.build_oci(ctx, *flags, tag=tag, env=env)


def _spliced(stats: Path) -> dict[str, int]:
    """The counters of the last build that wrote `stats`."""
    counters: dict[str, int] = json.loads(stats.read_text().splitlines()[-1])
    return counters


@pytest.mark.parametrize("what", ["changed", "added", "removed", "renamed", "mode", "hardlink"])
def test_the_spliced_layer_is_the_cold_one(
    lb: Layerbuild, new_store: Callable[[str], Layerbuild], tmp_path: Path, what: str
) -> None:
    ctx = _context(tmp_path)
    stats = tmp_path / "splices.jsonl"
    _build(lb, ctx, "s:1", stats)
    _edit(ctx, what)
    time.sleep(AGE_S)  # the unchanged files (and the edited one) are past the racy margin
    spliced = _build(lb, ctx, "s:2", stats)
    counters = _spliced(stats)
    assert counters["layers"] >= 1 and counters["spliced"] > 300, counters
    # the edited file is read again, by each COPY that has it (a hard link's data moves to
    # its first name, a new one), and nothing else
    assert counters["written"] <= 2, counters
    fresh = new_store("fresh")
    cold = _build(fresh, ctx, "s:2", tmp_path / "fresh.jsonl")
    assert _spliced(tmp_path / "fresh.jsonl")["spliced"] == 0  # nothing to splice from
    assert _layers(spliced) == _layers(cold)
    assert tree(unpack(spliced, "2")) == tree(unpack(cold, "2"))  # umoci reads it


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_each_compression(
    lb: Layerbuild, new_store: Callable[[str], Layerbuild], tmp_path: Path, compression: str
) -> None:
    ctx = _context(tmp_path)
    flags = ("--compression", compression)
    stats = tmp_path / "splices.jsonl"
    _build(lb, ctx, "s:1", stats, *flags)
    _edit(ctx, "changed")
    time.sleep(AGE_S)
    spliced = _build(lb, ctx, "s:2", stats, *flags)
    assert _spliced(stats)["spliced"] > 300
    cold = _build(new_store("fresh"), ctx, "s:2", tmp_path / "fresh.jsonl", *flags)
    assert _layers(spliced) == _layers(cold)


def test_switched_off_nothing_is_spliced(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    stats = tmp_path / "splices.jsonl"
    env = {**EPOCH, "LAYERBUILD_SPLICE_STATS": str(stats), "LAYERBUILD_SPLICE": "0"}
    lb.build(ctx, "-t", "s:1", env=env)
    _edit(ctx, "changed")
    time.sleep(AGE_S)
    lb.build(ctx, "-t", "s:2", env=env)
    assert _spliced(stats) == {"layers": 0, "spliced": 0, "written": 0, "read_bytes": 0}
    assert not (lb.store / "cache" / "tarindex").exists()


def test_a_damaged_previous_layer_is_packed_from_the_files(
    lb: Layerbuild, new_store: Callable[[str], Layerbuild], tmp_path: Path
) -> None:
    ctx = _context(tmp_path)
    stats = tmp_path / "splices.jsonl"
    _build(lb, ctx, "s:1", stats)
    for index in (lb.store / "cache" / "tarindex").iterdir():
        index.write_bytes(index.read_bytes()[:-10])  # fails its CRC: not used
    _edit(ctx, "changed")
    time.sleep(AGE_S)
    spliced = _build(lb, ctx, "s:2", stats)
    assert _spliced(stats)["spliced"] == 0
    cold = _build(new_store("fresh"), ctx, "s:2", tmp_path / "fresh.jsonl")
    assert _layers(spliced) == _layers(cold)


def test_gc_removes_the_index_with_its_blob(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    lb.build(ctx, "-t", "s:1", env=EPOCH)
    layer = lb.inspect("s:1")["Layers"][-1]
    assert (lb.store / "cache" / "tarindex" / layer.split(":")[1]).is_file()
    lb.ok("rmi", "s:1")
    lb.ok("cache", "prune", "--all")
    assert not (lb.store / "cache" / "tarindex" / layer.split(":")[1]).exists()
