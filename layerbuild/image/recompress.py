"""A stored layer in another compression: its uncompressed tar (decompress.open_layer) through
compress.py's encoders, so the bytes are as deterministic as a packed layer's."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from layerbuild.digest import Digest
from layerbuild.image.compress import make_encoder
from layerbuild.image.manifest import Layer
from layerbuild.image.mediatypes import layer_media_type
from layerbuild.image.tarwriter import CHUNK, Writable


def recompress(
    tar: BinaryIO,
    sink: Writable,
    *,
    compression: str,
    level: int | None = None,
    oci: bool = True,
) -> Layer:
    """Compress the uncompressed layer tar read from ``tar`` into ``sink`` and describe it.

    The other way to a blob than ``pack_layer``: an exporter's ``compression=`` turns a stored
    layer into another compression (decompress.open_layer gives ``tar``). The diff_id is the
    digest of what was read, so a caller can check it against the config's. The encoders are
    pack_layer's.
    """
    encoder = make_encoder(compression, level, None)
    diff_id, digest = hashlib.sha256(), hashlib.sha256()
    size = 0
    try:
        while chunk := tar.read(CHUNK):
            diff_id.update(chunk)
            size += _emit(encoder.compress(chunk), sink, digest)
        size += _emit(encoder.flush(), sink, digest)
    finally:
        encoder.close()
    return Layer(
        diff_id=Digest.from_hash(diff_id),
        digest=Digest.from_hash(digest),
        size=size,
        media_type=layer_media_type(compression, oci=oci),
    )


def _emit(data: bytes, sink: Writable, digest: hashlib._Hash) -> int:
    digest.update(data)
    sink.write(data)
    return len(data)
