"""The image `layerbuild analyze` reads: one in the store, or one in an OCI layout directory, an
OCI tarball or a docker-archive on disk, read in place without loading it into the store.

Each layer's entries are all the analysis needs: for a stored image they come from the
entries cache beside its blob (store/layerentries.py: parsed once per blob); a layer in an
archive is streamed through the decompressor and the tar reader, and nothing is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from gzip import BadGzipFile
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.errors import ImageFormatError
from layerbuild.export.archivemembers import ArchiveSource, open_source
from layerbuild.image import mediatypes as mt
from layerbuild.image.changes import Change
from layerbuild.image.config import ImageConfig
from layerbuild.image.decompress import detect_compression, open_layer
from layerbuild.image.descriptor import Descriptor, Platform, choose_platform
from layerbuild.image.manifest import Index, Layer, Manifest
from layerbuild.image.tarreader import read_changes
from layerbuild.store import images as store_images
from layerbuild.store.layerentries import layer_entries
from layerbuild.store.layout import Store

_MAX_JSON = 64 << 20
_MAX_NESTING = 4
_INDEX = "index.json"
_DOCKER_MANIFEST = "manifest.json"


class ImageInput:
    """What the analysis reads of one image: its layers (bottom first) and its config."""

    def __init__(
        self, name: str, layers: list[Layer], entries: list[list[Change]], config: ImageConfig
    ) -> None:
        self.name = name
        self.layers = layers
        self.entries = entries
        self.config = config


def from_store(store: Store, name: str, platform: Platform | None = None) -> ImageInput:
    """An image of the store, by name, digest or digest prefix."""
    desc = store_images.resolve(store, name)
    _, manifest, config = store_images.read_image(store, desc, platform)
    layers = manifest_layers(manifest, config, name)
    return ImageInput(name, layers, [layer_entries(store, layer) for layer in layers], config)


def from_path(path: Path, platform: Platform | None = None) -> ImageInput:
    """The image of an OCI layout (directory or tar) or of a docker-archive."""
    with open_source(path) as source:
        found = locate(source, platform)
        entries = [_read_entries(source, member) for member in found.members]
        return ImageInput(source.label, found.layers, entries, found.config)


@dataclasses.dataclass(frozen=True)
class Located:
    """An image found in an archive: its layers (bottom first), config, and the archive member
    that holds each layer's blob."""

    layers: list[Layer]
    config: ImageConfig
    config_digest: Digest
    members: list[str]


def locate(source: ArchiveSource, platform: Platform | None = None) -> Located:
    """The image of an OCI layout or a docker-archive, nothing of its layers read yet."""
    if source.has(_INDEX):
        return _from_layout(source, platform)
    if source.has(_DOCKER_MANIFEST):
        return _from_docker(source)
    raise ImageFormatError(
        f"{source.label}: has neither {_INDEX} nor {_DOCKER_MANIFEST}: "
        "not an OCI image layout or a docker-archive",
        hint="give an image name from `layerbuild images`, an OCI layout or a `docker save` tar",
    )


def manifest_layers(manifest: Manifest, config: ImageConfig, where: str) -> list[Layer]:
    if len(manifest.layers) != len(config.diff_ids):
        raise ImageFormatError(
            f"{where}: the manifest has {len(manifest.layers)} layers, the config's "
            f"rootfs.diff_ids {len(config.diff_ids)}"
        )
    return [
        Layer(diff_id, d.digest, d.size, d.media_type)
        for d, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
    ]


def _from_layout(source: ArchiveSource, platform: Platform | None) -> Located:
    index = Index.from_bytes(source.read_bytes(_INDEX, _MAX_JSON))
    desc = _pick(index, source.label, platform)
    for _ in range(_MAX_NESTING):
        data = source.read_bytes(_blob(desc.digest), _MAX_JSON)
        if desc.media_type not in mt.INDEXES:
            break
        desc = _pick(Index.from_bytes(data), source.label, platform)
    else:
        raise ImageFormatError(f"{source.label}: indexes nested more than {_MAX_NESTING} deep")
    manifest = Manifest.from_bytes(data, desc.media_type)
    config_bytes = source.read_bytes(_blob(manifest.config.digest), _MAX_JSON)
    config = ImageConfig.from_bytes(config_bytes)
    layers = manifest_layers(manifest, config, source.label)
    members = [_blob(layer.digest) for layer in layers]
    return Located(layers, config, sha256_bytes(config_bytes), members)


def _pick(index: Index, label: str, platform: Platform | None) -> Descriptor:
    if len(index.manifests) == 1:
        return index.manifests[0]
    named = {m.annotation(mt.ANNOTATION_REF_NAME): m.digest for m in index.manifests}
    refs = {ref for ref in named if ref is not None}
    if len(set(named.values())) > 1 and len(refs) > 1:  # several images, not several platforms
        raise ImageFormatError(
            f"{label} holds several images ({', '.join(sorted(refs))})",
            hint="`layerbuild load` it, then analyze each image by name",
        )
    chosen, available = choose_platform(index.manifests, platform)
    if chosen is None:
        raise ImageFormatError(
            f"{label}: no image for the platform (available: {available})",
            hint="pass --platform with one of the available platforms",
        )
    return chosen


def _from_docker(source: ArchiveSource) -> Located:
    items: Any = json.loads(source.read_bytes(_DOCKER_MANIFEST, _MAX_JSON))
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        raise ImageFormatError(
            f"{source.label}: {_DOCKER_MANIFEST} must list exactly one image to analyze",
            hint="`layerbuild load` it, then analyze each image by name",
        )
    config_name, layer_names = items[0].get("Config"), items[0].get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise ImageFormatError(f"{source.label}: {_DOCKER_MANIFEST}: entry without Config/Layers")
    config_bytes = source.read_bytes(config_name, _MAX_JSON)
    config = ImageConfig.from_bytes(config_bytes)
    if len(layer_names) != len(config.diff_ids):
        raise ImageFormatError(
            f"{source.label}: {_DOCKER_MANIFEST} lists {len(layer_names)} layers, the config's "
            f"rootfs.diff_ids {len(config.diff_ids)}"
        )
    layers: list[Layer] = []
    for name, diff_id in zip(layer_names, config.diff_ids, strict=True):
        with source.open(str(name)) as blob:
            size = blob.seek(0, 2) if blob.seekable() else 0
        layers.append(Layer(diff_id, diff_id, size, mt.OCI_LAYER))
    members = [str(name) for name in layer_names]
    return Located(layers, config, sha256_bytes(config_bytes), members)


@contextlib.contextmanager
def layer_stream(source: ArchiveSource, member: str) -> Iterator[BinaryIO]:
    """The uncompressed bytes of the layer blob `member`, whatever its compression; a blob
    that does not decompress is an ImageFormatError naming it."""
    with source.open(member) as blob:
        compression = detect_compression(blob.read(6))
    try:
        with source.open(member) as blob:
            yield open_layer(blob, compression)
    except (EOFError, zstandard.ZstdError, BadGzipFile) as e:
        raise ImageFormatError(f"{source.label}: {member}: cannot decompress ({e})") from e


def _read_entries(source: ArchiveSource, member: str) -> list[Change]:
    """A layer's entries, streamed; their content is not kept (the analysis reads sizes)."""
    with layer_stream(source, member) as stream:
        return [
            dataclasses.replace(c, content=None) if c.content else c for c in read_changes(stream)
        ]


def _blob(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"
