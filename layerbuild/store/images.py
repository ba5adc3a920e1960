"""Images in the store: read one (through an index to the platform's manifest), write one, and
find one by name or digest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from layerbuild.digest import Digest, is_digest
from layerbuild.errors import ImageFormatError, ImageNotFound, InvalidReference, StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.annotations import Annotations
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import DEFAULT_PLATFORM, Descriptor, Platform, choose_platform
from layerbuild.image.manifest import Index, Layer, Manifest
from layerbuild.registry.reference import parse_reference

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

MIN_PREFIX = 12
_MAX_NESTING = 4
_SNIFF_LIMIT = 4 << 20  # manifests and indexes are small; never parse a layer as JSON
_LIST_HINT = "run `layerbuild images` to list images"


def sniff_media_type(data: bytes) -> str | None:
    """The media type of a manifest or index blob from its JSON, or None for anything else."""
    try:
        obj: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    declared = obj.get("mediaType")
    if isinstance(declared, str) and (declared in mt.MANIFESTS or declared in mt.INDEXES):
        return declared
    if "manifests" in obj:
        return mt.OCI_INDEX
    if "config" in obj and "layers" in obj:
        return mt.OCI_MANIFEST
    return None


def _choose_manifest(index: Index, desc: Descriptor, platform: Platform | None) -> Descriptor:
    chosen, available = choose_platform(index.manifests, platform)
    if chosen is None:
        raise ImageNotFound(
            f"image {desc.digest.short} has no manifest for platform "
            f"{platform or DEFAULT_PLATFORM} (available: {available})",
            hint="pass --platform with one of the available platforms",
        )
    return chosen


def read_image(
    store: Store, desc: Descriptor, platform: Platform | None = None
) -> tuple[Descriptor, Manifest, ImageConfig]:
    """The manifest descriptor, manifest and config of an image; an index picks `platform`
    (default linux/amd64, or its only image)."""
    desc, manifest = read_manifest(store, desc, platform)
    config = ImageConfig.from_bytes(store.content.read_bytes(manifest.config.digest))
    return desc, manifest, config


def read_manifest(
    store: Store, desc: Descriptor, platform: Platform | None = None
) -> tuple[Descriptor, Manifest]:
    """The manifest descriptor and manifest of an image (as read_image, without the config)."""
    for _ in range(_MAX_NESTING):
        data = store.content.read_bytes(desc.digest)
        media_type = desc.media_type
        if media_type not in mt.MANIFESTS and media_type not in mt.INDEXES:
            media_type = sniff_media_type(data) or media_type
        if media_type in mt.INDEXES:
            desc = _choose_manifest(Index.from_bytes(data), desc, platform)
            continue
        if media_type not in mt.MANIFESTS:
            raise ImageFormatError(
                f"{desc.digest} is a {media_type}, not an image manifest or index"
            )
        return desc, Manifest.from_bytes(data, media_type)
    raise ImageFormatError(f"image {desc.digest}: indexes nested more than {_MAX_NESTING} deep")


def write_image(
    store: Store,
    config: ImageConfig,
    layers: Sequence[Layer],
    annotations: Annotations | None = None,
) -> Descriptor:
    """Store the config and an OCI manifest for `layers`; returns the image's descriptor.

    The layer blobs must already be in the store, and `config.diff_ids` must list them: an image
    that names content the store lacks, or whose config disagrees with its manifest, is refused
    here rather than found broken at export or push time.

    `annotations` (--annotation) go on the manifest and its descriptor; index or
    index-descriptor ones make the image a one-platform OCI index around that manifest, as
    buildx's images are, and the index descriptor is returned.
    """
    notes = annotations or Annotations()
    if tuple(config.diff_ids) != tuple(layer.diff_id for layer in layers):
        raise ImageFormatError(
            f"image config lists {len(config.diff_ids)} diff_ids that do not match the "
            f"{len(layers)} layers of the manifest"
        )
    for layer in layers:
        if not store.content.has(layer.digest):
            raise StoreError(f"layer blob {layer.digest} is not in the store at {store.root}")
    config_bytes = config.to_bytes()
    config_digest = store.content.put_bytes(config_bytes)
    manifest = Manifest(
        config=Descriptor(mt.OCI_CONFIG, config_digest, len(config_bytes)),
        layers=tuple(layer.descriptor for layer in layers),
        annotations=notes.manifest,
    )
    data = manifest.to_bytes()
    digest = store.content.put_bytes(data)
    platform = Platform(architecture=config.architecture, os=config.os, variant=config.variant)
    desc = Descriptor(
        manifest.media_type, digest, len(data), notes.manifest_descriptor, platform=platform
    )
    if not notes.wants_index:
        return desc
    index_bytes = Index((desc,), annotations=notes.index).to_bytes()
    index_digest = store.content.put_bytes(index_bytes)
    return Descriptor(mt.OCI_INDEX, index_digest, len(index_bytes), notes.index_descriptor)


def tag(store: Store, name: str, desc: Descriptor) -> str:
    """Name an image; returns the normalized name ('app' -> 'app:latest')."""
    return store.refs.set(name, desc)


def _by_digest(store: Store, digest: Digest) -> Descriptor:
    for desc in store.refs.list().values():
        if desc.digest == digest:
            return desc
    if not store.content.has(digest):
        raise ImageNotFound(f"no image with digest {digest} in the store", hint=_LIST_HINT)
    media_type = None
    if store.content.size(digest) <= _SNIFF_LIMIT:
        media_type = sniff_media_type(store.content.read_bytes(digest))
    if media_type is None:
        raise ImageNotFound(f"{digest} is in the store but is not an image", hint=_LIST_HINT)
    return Descriptor(media_type, digest, store.content.size(digest))


def _by_prefix(store: Store, prefix: str) -> Descriptor | None:
    """The one manifest or index whose hex digest starts with `prefix` (None: no match)."""
    matches: list[Descriptor] = []
    for digest in store.content.digests():
        if not digest.hex.startswith(prefix) or store.content.size(digest) > _SNIFF_LIMIT:
            continue
        media_type = sniff_media_type(store.content.read_bytes(digest))
        if media_type is not None:
            matches.append(Descriptor(media_type, digest, store.content.size(digest)))
    if len(matches) > 1:
        raise ImageNotFound(
            f"digest prefix {prefix} is ambiguous: it matches {len(matches)} images",
            hint="give more digits of the digest",
        )
    return matches[0] if matches else None


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)


def resolve(store: Store, name_or_digest: str) -> Descriptor:
    """A name ('app:1'), a digest ('sha256:...'), 'name@sha256:...', or a unique hex prefix of
    at least 12 digits of a manifest or index digest (with or without 'sha256:')."""
    text = name_or_digest.strip()
    if is_digest(text):
        return _by_digest(store, Digest(text))
    bare = text.removeprefix("sha256:")
    looks_like_id = _is_hex(bare) and len(bare) >= MIN_PREFIX
    if text.startswith("sha256:") and not looks_like_id:
        raise ImageNotFound(
            f"{text!r} is not a digest or a digest prefix of at least {MIN_PREFIX} hex digits",
            hint=_LIST_HINT,
        )
    if not text.startswith("sha256:"):
        try:
            ref = parse_reference(text)
        except InvalidReference:
            if not looks_like_id:
                raise
        else:
            if ref.digest is not None:
                return _by_digest(store, Digest(ref.digest))
            found = store.refs.get(ref.familiar)
            if found is not None:
                return found
    if looks_like_id:
        by_prefix = _by_prefix(store, bare)
        if by_prefix is not None:
            return by_prefix
    raise ImageNotFound(f"no image named {text!r} in the store", hint=_LIST_HINT)
