"""The cache image: a manifest whose layers are the cached layer blobs and whose config (media
type CACHE_CONFIG) lists the CacheRecords (docs/cache-format.md); written from records, and read
back into the records an import may use."""

from __future__ import annotations

import json
from collections.abc import Sequence

from layerbuild.digest import canonical_json
from layerbuild.errors import CacheError, ImageFormatError
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Manifest
from layerbuild.plan.keys import CacheKey
from layerbuild.registry.remotecache.spec import Note
from layerbuild.store.cacheindex import CacheRecord, link_problem
from layerbuild.store.layout import Store

CACHE_CONFIG = "application/vnd.layerbuild.cache.config.v1+json"
FORMAT_VERSION = 2  # 1: records without parent links, ignored (with a note) on import
MODE_ANNOTATION = "dev.layerbuild.cache.mode"
MAX_CONFIG = 256 << 20


def cache_image(store: Store, records: Sequence[CacheRecord], mode: str) -> Descriptor:
    """Write the cache config and manifest of `records` into the store; the manifest's
    descriptor."""
    config = {
        "mediaType": CACHE_CONFIG,
        "version": FORMAT_VERSION,
        "records": [r.to_json() for r in records],
    }
    data = canonical_json(config)
    config_desc = Descriptor(CACHE_CONFIG, store.content.put_bytes(data), len(data))
    layers = {r.layer.digest: r.layer.descriptor for r in records if r.layer is not None}
    manifest = Manifest(
        config_desc, tuple(layers.values()), annotations=((MODE_ANNOTATION, mode),)
    )
    body = manifest.to_bytes()
    return Descriptor(mt.OCI_MANIFEST, store.content.put_bytes(body), len(body))


def read_records(
    manifest: Manifest, config: bytes, where: str, note: Note = lambda message: None
) -> list[CacheRecord]:
    """The usable records of a cache config: the key digest must be the digest of the key's
    inputs, the record must link to its parent and end with its own layer, and the layer must
    be one the manifest carries (so its blob came with it)."""
    _check_config_type(manifest, where)
    try:
        obj = json.loads(config)
        raw = obj["records"] if isinstance(obj, dict) else None
        if isinstance(raw, list) and obj.get("version") == 1:
            note(f"the cache at {where} is of an older format (no parent links); not used")
            return []
        if not isinstance(raw, list) or obj.get("version") != FORMAT_VERSION:
            raise ValueError("no records, or an unknown format version")
    except (ValueError, KeyError) as e:
        raise CacheError(f"the cache config of {where} is damaged: {e}") from None
    carried = {d.digest: d for d in manifest.layers}
    out = []
    for item in raw:
        try:
            record = CacheRecord.from_json(item)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if CacheKey.of(record.key.inputs).digest != record.key.digest:
            continue
        if link_problem(record, None):
            continue
        if record.layer is not None and record.layer.digest not in carried:
            continue
        out.append(record)
    return out


def cache_manifest(data: bytes, media_type: str, where: str) -> Manifest:
    """The cache manifest in `data`, or a CacheError saying why it is none: not an image
    manifest, not JSON, a field of the wrong type, or a config that is not a cache's."""
    if media_type not in mt.MANIFESTS:
        raise CacheError(f"{where} is a {media_type or 'untyped'} document, not a cache manifest")
    try:
        manifest = Manifest.from_bytes(data, media_type)
    except (ImageFormatError, TypeError, AttributeError) as e:
        raise CacheError(f"the cache manifest of {where} is damaged: {e}") from None
    _check_config_type(manifest, where)  # before its config is fetched: it may be large
    return manifest


def _check_config_type(manifest: Manifest, where: str) -> None:
    if manifest.config.media_type != CACHE_CONFIG:
        raise CacheError(
            f"{where} is not a layerbuild cache (config media type {manifest.config.media_type})",
            hint="point --cache-from at what --cache-to wrote",
        )
