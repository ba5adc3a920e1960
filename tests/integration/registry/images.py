"""Images made straight in a store for the registry tests (random content, chosen sizes)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile

import zstandard

from layerbuild.digest import Digest
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Layer
from layerbuild.store.images import write_image
from layerbuild.store.layout import Store


def layer_tar(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def put_layer(store: Store, tar: bytes, compression: str = "none") -> Layer:
    if compression == "gzip":
        blob = gzip.compress(tar, compresslevel=1, mtime=0)
    elif compression == "zstd":
        blob = zstandard.ZstdCompressor().compress(tar)
    else:
        blob = tar
    digest = store.content.put_bytes(blob)
    diff_id = Digest("sha256:" + hashlib.sha256(tar).hexdigest())
    return Layer(diff_id, digest, len(blob), mt.layer_media_type(compression))


def random_image(
    store: Store,
    sizes: list[int],
    *,
    arch: str = "amd64",
    compressions: list[str] | None = None,
) -> Descriptor:
    """An image with one random file per layer of the given sizes."""
    layers = []
    for i, size in enumerate(sizes):
        compression = compressions[i] if compressions else "none"
        layers.append(put_layer(store, layer_tar(f"file{i}", os.urandom(size)), compression))
    config = ImageConfig(architecture=arch, diff_ids=tuple(layer.diff_id for layer in layers))
    return write_image(store, config, layers)
