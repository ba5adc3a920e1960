"""The uncompressed size of each layer blob (its diff size), measured once and then remembered.

No OCI document records how big a layer is unpacked, and the compressed formats cannot be
trusted to say it: gzip's ISIZE trailer holds the size modulo 4 GiB of the *last member* only
(pigz and other parallel writers emit many), and a zstd frame's content size is optional (the
frames layerbuild writes omit it, image/compress.py) and per frame. So the size is counted by
decompressing the blob once, as a stream (nothing is written but the count), and kept in
``<store>/cache/diffsizes.json`` keyed by blob digest: a blob never changes, so the next
`layerbuild df` reads the number back. The file is a cache, never the truth: a missing or
damaged one is rebuilt, and rows of blobs that are gone are dropped when it is rewritten.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.digest import Digest
from layerbuild.errors import ImageFormatError
from layerbuild.image.decompress import detect_compression, open_layer
from layerbuild.store.cacheindex import write_cache_file

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

_FORMAT = 1
_CHUNK = 1 << 20


def memo_path(store_root: Path) -> Path:
    return store_root / "cache" / "diffsizes.json"


def diff_sizes(store: Store, blobs: Iterable[Digest]) -> dict[Digest, int]:
    """The uncompressed size of every blob of `blobs` the store has (missing ones are left out);
    a blob that does not decompress counts as itself (its stored size)."""
    path = memo_path(store.root)
    memo = _load(path)
    sizes: dict[Digest, int] = {}
    learned = False
    for digest in blobs:
        if str(digest) in memo:
            if store.content.has(digest):
                sizes[digest] = memo[str(digest)]
            continue
        measured = _measure(store, digest)
        if measured is not None:
            sizes[digest] = memo[str(digest)] = measured
            learned = True
    if learned and store.writable:
        kept = {k: v for k, v in memo.items() if store.content.has(Digest(k))}
        with contextlib.suppress(OSError):  # a full store still answers, slower next time
            write_cache_file(path, json.dumps({"format": _FORMAT, "sizes": kept}).encode())
    return sizes


def _measure(store: Store, digest: Digest) -> int | None:
    """Counted from the file as it is, unverified: checking blobs is fsck's job, and a
    verifying read would drop a damaged blob from a command that only looks."""
    try:
        blob = store.content.path(digest).open("rb")
    except FileNotFoundError:
        return None
    with blob:
        compression = detect_compression(blob.read(8))
        size = os.fstat(blob.fileno()).st_size
        if compression == "none":
            return size
        blob.seek(0)
        total = 0
        buf = bytearray(_CHUNK)
        try:
            reader = open_layer(blob, compression)
            while n := reader.readinto(buf):  # type: ignore[attr-defined]
                total += n
        except (OSError, EOFError, ImageFormatError, ValueError):
            return size  # not a stream we can read: it counts its bytes as stored
        return total


def _load(path: Path) -> dict[str, int]:
    try:
        obj = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(obj, dict) or obj.get("format") != _FORMAT:
        return {}
    sizes = obj.get("sizes")
    if not isinstance(sizes, dict):
        return {}
    return {str(k): v for k, v in sizes.items() if isinstance(v, int)}
