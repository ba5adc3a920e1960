"""Reusing gzip blocks: content-defined chunks, and a blob packed with reused blocks is byte
for byte the blob packed from scratch; a change costs the blocks around it, not every block
after it."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random

from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.compress import BlockRecord, pack_layer
from layerbuild.image.tarwriter import write_tar


class DictCache:
    """The blocks of packed blobs, held in memory (store/blockcache.py keeps them on disk)."""

    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}
        self.hits = 0
        self.deflated_bytes = 0

    def deflated(self, nbytes: int) -> None:
        self.deflated_bytes += nbytes

    def learn(self, blob: bytes, index: list[BlockRecord]) -> None:
        for r in index:
            self.blocks[r.key] = blob[r.offset : r.offset + r.length]

    def get(self, key: bytes) -> tuple[bytes, bytes] | None:
        found = self.blocks.get(key)
        self.hits += found is not None
        return None if found is None else (found, hashlib.sha256(found).digest())


def _files(sizes: list[int], seed: int = 7) -> list[Change]:
    rng = random.Random(seed)
    words = [rng.randbytes(6).hex() for _ in range(500)]
    changes = [Change("data", ChangeKind.DIR, 0o755, mtime=1)]
    for i, size in enumerate(sizes):
        text = " ".join(rng.choice(words) for _ in range(size // 12 + 1)).encode()[:size]
        changes.append(_file(f"data/f{i:05d}", text))
    return changes


def _file(path: str, data: bytes) -> Change:
    return Change(
        path, ChangeKind.FILE, 0o644, size=len(data), mtime=1, content=lambda: io.BytesIO(data)
    )


def _pack(changes: list[Change], cache: DictCache | None) -> tuple[bytes, list[BlockRecord]]:
    sink = io.BytesIO()
    index: list[BlockRecord] = []
    pack_layer(changes, sink, compression="gzip", blocks=cache, index=index)
    return sink.getvalue(), index


SIZES = [random.Random(1).randint(500, 16_000) for _ in range(1500)] + [3 << 20]


def test_unchanged_layer_is_all_reused_and_identical() -> None:
    changes = _files(SIZES)
    fresh, index = _pack(changes, None)
    assert len(index) == 0  # no cache, no keys
    cache = DictCache()
    first, index = _pack(changes, cache)
    assert first == fresh and len(index) > 5
    assert cache.deflated_bytes == len(_tar(changes))  # an empty cache: every byte deflated
    cache.learn(first, index)
    cache.deflated_bytes = 0
    again, _ = _pack(changes, cache)
    assert again == fresh
    assert cache.hits == len(index)
    assert cache.deflated_bytes == 0


def test_a_grown_file_reuses_the_blocks_away_from_it() -> None:
    changes = _files(SIZES)
    cache = DictCache()
    blob, index = _pack(changes, cache)
    cache.learn(blob, index)
    grown = list(changes)
    middle = len(grown) // 2
    old = grown[middle]
    with old.content() as f:  # type: ignore[misc]
        data = f.read() + b" and a few more words, which shift everything after them"
    grown[middle] = _file(old.path, data)
    cache.deflated_bytes = 0
    reused, new_index = _pack(grown, cache)
    # the changed chunk, its neighbour and the end (chunks are at most 2 MiB)
    assert 0 < cache.deflated_bytes <= 3 * (2 << 20) < len(_tar(grown))
    assert reused == _pack(grown, None)[0]  # reuse never changes the bytes
    assert gzip.decompress(reused) == _tar(grown)
    assert cache.hits >= len(new_index) - 3  # the changed chunk, its neighbour, and the end


def test_chunks_are_cut_by_content_not_by_offset() -> None:
    """Growing the first file must not move the cuts of everything after it."""
    changes = _files(SIZES)
    _, before = _pack(changes, DictCache())
    grown = list(changes)
    grown[1] = _file(grown[1].path, os.urandom(777) + b"x" * 5000)
    _, after = _pack(grown, DictCache())
    assert len({r.key for r in before} & {r.key for r in after}) >= len(before) - 3


def _tar(changes: list[Change]) -> bytes:
    out = io.BytesIO()
    write_tar(changes, out)
    return out.getvalue()
