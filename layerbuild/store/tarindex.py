"""The entry index of a stored layer (image/tarsplice.EntryIndex), kept beside its blob.

Written when a COPY layer is packed, read when the same step packs again, so the new layer
can take the unchanged entries' bytes from this one. ``<store>/cache/tarindex/<hex>`` (the
blob's digest) holds one marshal of the arrays and a CRC-32 of it. The file is a cache, never
the truth: one that is missing, damaged or of another format is not used (the layer is packed
from its files), and gc removes the ones whose blob is gone (`forget`).
"""

from __future__ import annotations

import contextlib
import marshal
import struct
import zlib
from array import array
from collections.abc import Iterable
from pathlib import Path

from layerbuild.digest import Digest
from layerbuild.image.tarheader import HEADER_FORMAT
from layerbuild.image.tarsplice import EntryIndex
from layerbuild.store.cacheindex import write_cache_file
from layerbuild.store.layout import Store

# bump the first when the layout below changes; the second is the tar header encoding the
# index vouches for: old files are then ignored
_FORMAT = (4, HEADER_FORMAT)
_CRC = struct.Struct("<I")


def index_path(store: Store, blob: Digest) -> Path:
    return store.tar_index_dir / blob.hex


def save(store: Store, blob: Digest, index: EntryIndex) -> None:
    """Keep `index` for the stored blob `blob`; a store that cannot take it builds on, slower."""
    fields = (
        _FORMAT,
        str(blob),
        index.paths,
        index.offsets.tobytes(),
        index.header_sizes.tobytes(),
        index.meta.tobytes(),
        index.sha256s,
    )
    # ValueError: a str subclass among the paths, which marshal refuses (no index, no splice)
    with contextlib.suppress(OSError, ValueError):
        payload = marshal.dumps(fields)
        write_cache_file(index_path(store, blob), _CRC.pack(zlib.crc32(payload)) + payload)


def load(store: Store, blob: Digest) -> EntryIndex | None:
    """The index of `blob`, or None when there is none that can be trusted."""
    try:
        data = index_path(store, blob).read_bytes()
    except OSError:
        return None
    if len(data) < _CRC.size or _CRC.unpack_from(data)[0] != zlib.crc32(data[_CRC.size :]):
        return None
    try:
        fields = marshal.loads(data[_CRC.size :])
        version, owner, paths, offsets, header_sizes, meta, sha256s = fields
        if version != _FORMAT or owner != str(blob):
            return None
        return EntryIndex(
            paths, _array("Q", offsets), _array("L", header_sizes), _array("q", meta), sha256s
        )
    except (ValueError, EOFError, TypeError):
        return None


def _array(typecode: str, data: bytes) -> array[int]:
    values = array(typecode)
    values.frombytes(data)
    return values


def forget(store: Store, digests: Iterable[Digest]) -> None:
    """Drop the indexes of blobs that are gone (gc)."""
    for digest in digests:
        index_path(store, digest).unlink(missing_ok=True)
