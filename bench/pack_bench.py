"""Layer packing throughput: tar writer, compressors alone, and pack_layer's one-pass pipeline.

    python bench/pack_bench.py [--mb 500] [--dir PATH]

Generates (or reuses) a mixed context in PATH: 20,000 small files of 1-16 KiB of
semi-compressible text plus a few large files bringing the total to about --mb megabytes.
Prints MB/s (of uncompressed tar bytes) for sha256 alone, isal gzip alone, zstd alone, the tar
writer alone, pack_layer gzip and pack_layer zstd, and how close packing gets to the
compressor's own speed. Figures only: this never asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zstandard
from isal import isal_zlib

from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.compress import pack_layer
from layerbuild.image.tarwriter import write_tar

SMALL_FILES = 20_000
LARGE_FILES = 4
CHUNK = 1 << 20


class NullSink:
    def write(self, data: bytes) -> int:
        return len(data)


def text_pool(rng: random.Random, size: int) -> bytes:
    """Text-like bytes that compress about 3:1, like source trees and package files."""
    words = [rng.randbytes(rng.randint(2, 6)).hex() for _ in range(3000)]
    out = io.StringIO()
    while out.tell() < size:
        out.write(" ".join(rng.choices(words, k=16)) + "\n")
    return out.getvalue().encode()[:size]


def generate(root: Path, total_mb: int) -> None:
    rng = random.Random(42)
    pool = text_pool(rng, 8 << 20)
    small_total = generate_small(root, rng, pool, SMALL_FILES, (1024, 16 * 1024))
    generate_large(root, pool, max(0, (total_mb << 20) - small_total))


def generate_small(
    root: Path, rng: random.Random, pool: bytes, count: int, sizes: tuple[int, int]
) -> int:
    """`count` files of sizes[0] to sizes[1] bytes cut from `pool`, in 1,400 folders; returns
    their total size."""
    small_total = 0
    for i in range(count):
        directory = root / f"pkg{i % 200:03d}" / f"mod{i % 7}"
        directory.mkdir(parents=True, exist_ok=True)
        size = rng.randint(*sizes)
        start = rng.randrange(len(pool) - size)
        (directory / f"file{i:05d}.txt").write_bytes(pool[start : start + size])
        small_total += size
    return small_total


def generate_large(root: Path, pool: bytes, total: int) -> None:
    """LARGE_FILES files of `pool` repeated, `total` bytes in all."""
    large = total // LARGE_FILES
    for i in range(LARGE_FILES):
        with open(root / f"large{i}.bin", "wb") as f:
            written = 0
            while written < large:
                piece = pool[: min(len(pool), large - written)]
                f.write(piece)
                written += len(piece)


def opener(path: str) -> Callable[[], BinaryIO]:
    return lambda: open(path, "rb")


def changes_for(root: Path) -> list[Change]:
    changes: list[Change] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, root)
            kind = ChangeKind.DIR if stat.S_ISDIR(st.st_mode) else ChangeKind.FILE
            changes.append(
                Change(rel, kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                       st.st_size if kind is ChangeKind.FILE else 0, int(st.st_mtime),
                       content=opener(full) if kind is ChangeKind.FILE else None)
            )  # fmt: skip
    return changes


def timed(label: str, nbytes: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    rate = nbytes / (time.perf_counter() - start) / 1e6
    print(f"  {label:<28} {rate:8.0f} MB/s")
    return rate


def compress_all(data: bytes, make: Callable[[], object]) -> None:
    encoder = make()
    view = memoryview(data)
    for i in range(0, len(data), CHUNK):
        encoder.compress(view[i : i + CHUNK])  # type: ignore[attr-defined]
    encoder.flush()  # type: ignore[attr-defined]


def run(root: Path) -> None:
    changes = changes_for(root)
    tar = io.BytesIO()
    write_tar(changes, tar)
    data = tar.getvalue()  # also warms the page cache for the runs below
    n = len(data)
    files = sum(1 for c in changes if c.kind is ChangeKind.FILE)
    print(f"context: {files} files, {n / 1e6:.0f} MB of tar, {os.cpu_count()} CPUs")
    timed("sha256 alone", n, lambda: hashlib.sha256(data).digest())
    gzip_rate = timed(
        "isal gzip alone",
        n,
        lambda: compress_all(data, lambda: isal_zlib.compressobj(2, isal_zlib.DEFLATED, -15)),
    )
    zstd_rate = timed(
        "zstd alone (level 3)",
        n,
        lambda: compress_all(data, lambda: zstandard.ZstdCompressor(level=3).compressobj()),
    )
    timed("tar writer alone", n, lambda: write_tar(changes, NullSink()))
    small = [c for c in changes if c.size <= 16 * 1024]
    start = time.perf_counter()
    write_tar(small, NullSink())
    print(f"  {'small files':<28} {len(small) / (time.perf_counter() - start):8.0f} files/s")
    pack_gzip = timed(
        "pack_layer gzip", n, lambda: pack_layer(changes, NullSink(), compression="gzip")
    )
    pack_zstd = timed(
        "pack_layer zstd", n, lambda: pack_layer(changes, NullSink(), compression="zstd")
    )
    print(f"  pack/compressor: gzip {pack_gzip / gzip_rate:.2f}, zstd {pack_zstd / zstd_rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="approximate context size")
    parser.add_argument("--dir", type=Path, help="context to generate into or reuse")
    args = parser.parse_args()
    if args.dir is not None:
        if not args.dir.exists() or not any(args.dir.iterdir()):
            args.dir.mkdir(parents=True, exist_ok=True)
            generate(args.dir, args.mb)
        run(args.dir)
        return
    with tempfile.TemporaryDirectory(prefix="pack-bench-") as tmp:
        generate(Path(tmp), args.mb)
        run(Path(tmp))


if __name__ == "__main__":
    main()
