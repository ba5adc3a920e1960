"""The mtimes of a layer's entries, kept beside its snapshot for the next delta.

Whether the next build's COPY layer may leave an entry to the snapshot below its delta
(store/deltaplan.py) depends on its mtime too, which the per-path summaries of a cache record
leave out. Reading it back from the snapshot costs an lstat per entry (half a second at 100,000
files); so the writer of a snapshot made from Changes (store/deltasnap.py) also writes the
entries' mtimes, in layer order, to ``<store>/cache/mtimes/<hex of diff_id>``: one marshal of
the CRC-32 of the paths joined (the order they must be read back in: the cache record's
summaries) and the mtimes as an array of int64 nanoseconds.

A record belongs to a layer's content, so it is never wrong for that diff_id. It is a cache,
never the truth: one that is missing, damaged or of another order is not used (the snapshot is
lstat-ed instead), and gc removes those of layers that have no snapshot any more (`forget`).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import zlib
from array import array
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from layerbuild.image.changes import Change

_FORMAT = 1


def mtimes_dir(store_root: Path) -> Path:
    return store_root / "cache" / "mtimes"


def _crc(paths: Iterable[str]) -> int:
    return zlib.crc32("\0".join(paths).encode("utf-8", "surrogateescape"))


def write(dest: Path, changes: Sequence[Change], mtimes_ns: Sequence[int]) -> None:
    """Write the record of a layer of `changes` (their mtimes as the layer has them) to
    `dest`, a temporary path the caller then `keep`s; best effort."""
    with contextlib.suppress(OSError, ValueError, OverflowError):
        payload = (_FORMAT, _crc(c.path for c in changes), array("q", mtimes_ns).tobytes())
        dest.write_bytes(marshal.dumps(payload))


def keep(store_root: Path, src: Path, hex_: str) -> None:
    """Move a record `write` made into place for the layer of diff_id hex `hex_`."""
    target = mtimes_dir(store_root) / hex_
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, target)


def load(record: Path, summaries: Mapping[str, str]) -> dict[str, int] | None:
    """path -> mtime in ns of the layer whose entries `summaries` lists in layer order, or
    None when `record` is missing, damaged or not of that order."""
    try:
        fmt, crc, data = marshal.loads(record.read_bytes())
        if fmt != _FORMAT or crc != _crc(summaries):
            return None
        mtimes = array("q")
        mtimes.frombytes(data)
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if len(mtimes) != len(summaries):
        return None
    return dict(zip(summaries, mtimes, strict=True))


def forget(store_root: Path, keep_hexes: set[str]) -> None:
    """Remove the records of layers whose diff_id hex is not in `keep_hexes` (gc)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(mtimes_dir(store_root)):
            if entry.name not in keep_hexes:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
