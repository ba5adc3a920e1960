"""Check an image's internal consistency, as go-containerregistry's ``validate`` does.

Every problem is collected (not just the first) and each message shows both the expected and
the actual value, so a failing test or ``layerbuild verify`` says exactly what is off. An index
is validated by validating each manifest it lists.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import cast

import zstandard
from isal import isal_zlib

from layerbuild.digest import Digest
from layerbuild.errors import LayerbuildError
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.decompress import open_layer
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Manifest

ReadBlob = Callable[[Digest], bytes]
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    zstandard.ZstdError,
    cast(type[BaseException], isal_zlib.IsalError),
)

_CONFIG_FOR = {mt.OCI_MANIFEST: mt.OCI_CONFIG, mt.DOCKER_MANIFEST: mt.DOCKER_CONFIG}
_LAYERS_FOR = {
    mt.OCI_MANIFEST: frozenset({mt.OCI_LAYER, mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD}),
    mt.DOCKER_MANIFEST: frozenset({mt.DOCKER_LAYER, mt.DOCKER_LAYER_GZIP}),
}


def _read(read_blob: ReadBlob, desc: Descriptor, what: str, problems: list[str]) -> bytes | None:
    """The blob of ``desc`` if it can be read and matches its digest and size."""
    try:
        data = read_blob(desc.digest)
    except (LayerbuildError, OSError, KeyError) as e:
        problems.append(f"{what} {desc.digest}: cannot read blob: {e}")
        return None
    actual = Digest("sha256:" + hashlib.sha256(data).hexdigest())
    ok = True
    if actual != desc.digest:
        problems.append(
            f"{what}: digest mismatch: descriptor says {desc.digest}, blob is {actual}"
        )
        ok = False
    if len(data) != desc.size:
        problems.append(
            f"{what} {desc.digest}: size mismatch: descriptor says {desc.size}, "
            f"blob has {len(data)} bytes"
        )
        ok = False
    return data if ok else None


def validate_image(read_blob: ReadBlob, manifest_desc: Descriptor) -> list[str]:
    """Every inconsistency of the image (or index) ``manifest_desc``; empty when valid.

    ``read_blob`` returns a blob's bytes by digest (raising for a missing one).
    """
    problems: list[str] = []
    data = _read(read_blob, manifest_desc, "manifest", problems)
    if data is None:
        return problems
    if manifest_desc.media_type in mt.INDEXES:
        _validate_index(read_blob, data, problems)
        return problems
    try:
        manifest = Manifest.from_bytes(data, manifest_desc.media_type)
    except LayerbuildError as e:
        return [*problems, f"manifest {manifest_desc.digest}: {e}"]
    if manifest.media_type != manifest_desc.media_type:
        problems.append(
            f"manifest media type mismatch: descriptor says {manifest_desc.media_type}, "
            f"manifest says {manifest.media_type}"
        )
    problems.extend(_media_type_problems(manifest))
    config = _read_config(read_blob, manifest.config, problems)
    if config is not None:
        problems.extend(_config_problems(config, manifest))
    for i, layer_desc in enumerate(manifest.layers):
        diff_id = config.diff_ids[i] if config and i < len(config.diff_ids) else None
        problems.extend(_layer_problems(read_blob, i, layer_desc, diff_id))
    return problems


def _validate_index(read_blob: ReadBlob, data: bytes, problems: list[str]) -> None:
    try:
        index = Index.from_bytes(data)
    except LayerbuildError as e:
        problems.append(f"index: {e}")
        return
    for child in index.manifests:
        where = f"index entry {child.digest} ({child.platform or 'no platform'})"
        problems.extend(f"{where}: {p}" for p in validate_image(read_blob, child))


def _media_type_problems(manifest: Manifest) -> list[str]:
    expected_config = _CONFIG_FOR.get(manifest.media_type)
    if expected_config is None:
        return [f"manifest media type {manifest.media_type} is not an image manifest type"]
    problems = []
    if manifest.config.media_type != expected_config:
        problems.append(
            f"config media type mismatch: a {manifest.media_type} manifest needs "
            f"{expected_config}, config descriptor says {manifest.config.media_type}"
        )
    allowed = _LAYERS_FOR[manifest.media_type]
    for i, layer in enumerate(manifest.layers):
        if layer.media_type not in allowed:
            extra = " (zstd layers need an OCI manifest)" if "zstd" in layer.media_type else ""
            problems.append(
                f"layer {i} {layer.digest}: media type {layer.media_type} does not belong in a "
                f"{manifest.media_type} manifest{extra}; expected one of {sorted(allowed)}"
            )
    return problems


def _read_config(read_blob: ReadBlob, desc: Descriptor, problems: list[str]) -> ImageConfig | None:
    data = _read(read_blob, desc, "config", problems)
    if data is None:
        return None
    try:
        return ImageConfig.from_bytes(data)
    except LayerbuildError as e:
        problems.append(f"config {desc.digest}: {e}")
        return None


def _config_problems(config: ImageConfig, manifest: Manifest) -> list[str]:
    problems = []
    if len(config.diff_ids) != len(manifest.layers):
        problems.append(
            f"layer count mismatch: config has {len(config.diff_ids)} diff_ids, "
            f"manifest has {len(manifest.layers)} layers"
        )
    if config.history:
        with_layers = sum(1 for h in config.history if not h.empty_layer)
        if with_layers != len(manifest.layers):
            problems.append(
                f"history mismatch: config history has {with_layers} non-empty entries, "
                f"manifest has {len(manifest.layers)} layers"
            )
    return problems


def _layer_problems(
    read_blob: ReadBlob, index: int, desc: Descriptor, diff_id: Digest | None
) -> list[str]:
    problems: list[str] = []
    what = f"layer {index}"
    data = _read(read_blob, desc, what, problems)
    if data is None:
        return problems
    try:
        compression = mt.layer_compression(desc.media_type)
    except ValueError:
        return [*problems, f"{what} {desc.digest}: unknown layer media type {desc.media_type}"]
    try:
        uncompressed = hashlib.sha256()
        with open_layer(io.BytesIO(data), compression) as reader:
            while chunk := reader.read(1 << 20):
                uncompressed.update(chunk)
    except _DECODE_ERRORS as e:  # a corrupt blob is a finding, not a crash
        return [*problems, f"{what} {desc.digest}: cannot decompress as {compression}: {e}"]
    actual = Digest.from_hash(uncompressed)
    if diff_id is not None and actual != diff_id:
        problems.append(
            f"{what} {desc.digest}: diff_id mismatch: config says {diff_id}, "
            f"uncompressed layer is {actual}"
        )
    return problems
