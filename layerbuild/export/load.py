"""Import images from an OCI layout directory, an OCI tarball or a docker-archive tarball.

Accepted inputs (a tarball may be gzip-compressed as a whole):

- an OCI image layout, as a directory or a tar (`index.json` + `blobs/`); this includes the
  Docker >= 25 `docker save` shape, which is an OCI layout plus `manifest.json`;
- a classic docker-archive: `manifest.json` + `<id>/layer.tar` + `<hex>.json` configs, as written
  by `docker save` before 25 and by `podman save --format docker-archive`.

Nothing is extracted to disk: members are read by name (archivemembers.py) and streamed into the
content store, which verifies every blob against its digest while ingesting it. In-archive
symlinks and hard links (old `docker save` links repeated layers) are followed by name, within
the archive only.

A classic archive has no manifest, so one is built: an OCI manifest whose layers are the layer
files as uncompressed tars (`application/vnd.oci.image.layer.v1.tar`, so each digest is the
layer's diff_id and is checked against the config's `rootfs.diff_ids` while it streams in) and
whose config is the archive's config blob, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import zstandard
from isal import isal_zlib

from layerbuild.digest import Digest, is_digest, sha256_bytes
from layerbuild.errors import DigestMismatch, ImageFormatError, InvalidReference
from layerbuild.export.archivemembers import ArchiveSource, clean_name, open_source
from layerbuild.export.oci_layout import INDEX_FILE, LAYOUT_FILE
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.decompress import detect_compression, open_layer
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Manifest
from layerbuild.registry.reference import normalize_tag

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

MANIFEST_FILE = "manifest.json"
_CHUNK = 1 << 20
# index.json, manifest.json, manifests and configs are read into memory; real ones are far smaller
_MAX_JSON = 64 << 20

Loaded = list[tuple[str | None, Descriptor]]
# what the decompressors raise for corrupt data (isal's stub types its error as an instance)
_DECOMPRESS_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    EOFError,
    ValueError,
    cast("type[Exception]", isal_zlib.error),
    zstandard.ZstdError,
)


def load(store: Store, path: Path) -> Loaded:
    """Import every image in `path` into the store; tag those that carry a name.

    Returns (name or None, manifest descriptor) per image name found; names are the familiar
    form (`app:1`) of `io.containerd.image.name`, of a ref name that is a full reference, or of
    `RepoTags`. Raises ImageFormatError naming the file and the problem for bad input.
    """
    # shared, as a build holds it: gc (exclusive) cannot sweep the new blobs before they are tagged
    with store.lock(shared=True), open_source(path) as source:
        if source.has(INDEX_FILE):
            images = _load_layout(store, source)
        elif source.has(MANIFEST_FILE):
            images = _load_docker(store, source)
        else:
            raise ImageFormatError(
                f"{path}: has neither {INDEX_FILE} nor {MANIFEST_FILE}: "
                "not an OCI image layout or a docker-archive",
                hint="load a directory or tar written by `docker save`, `podman save`, "
                "skopeo, buildx --output type=oci, or layerbuild",
            )
        for name, desc in images:
            if name is not None:
                store.refs.set(name, desc)
    return images


# -- OCI layouts ---------------------------------------------------------------------------------


def import_image(
    store: Store, path: Path, *, tag: str | None = None, digest: str | None = None, label: str = ""
) -> Descriptor:
    """One image of an OCI layout (directory or tar), ingested but not named in the store.

    For `--build-context NAME=oci-layout://PATH[:TAG|@DIGEST]`: the entry whose ref name is
    `tag`, or whose digest is `digest`; with neither, `latest` or the layout's only image.
    """
    what = f"build context {label!r}: " if label else ""
    with store.lock(shared=True), open_source(path) as source:
        if not source.has(INDEX_FILE):
            raise ImageFormatError(f"{what}{path} is not an OCI image layout (no {INDEX_FILE})")
        index = Index.from_bytes(source.read_bytes(INDEX_FILE, _MAX_JSON))
        entry = _pick_entry(index.manifests, tag, digest)
        if entry is None:
            refs = sorted(
                filter(None, (e.annotation(mt.ANNOTATION_REF_NAME) for e in index.manifests))
            )
            want = f"@{digest}" if digest else f":{tag or 'latest'}"
            raise ImageFormatError(
                f"{what}{path} has no image {want}",
                hint=f"images in it: {', '.join(refs) or 'none with a ref name'}",
            )
        _ingest_tree(store, source, entry, required=True)
        return Descriptor(entry.media_type, entry.digest, entry.size, platform=entry.platform)


def _pick_entry(
    entries: tuple[Descriptor, ...], tag: str | None, digest: str | None
) -> Descriptor | None:
    if digest is not None:
        return next((e for e in entries if e.digest == digest), None)
    for want in (tag,) if tag else ("latest",):
        found = [e for e in entries if e.annotation(mt.ANNOTATION_REF_NAME) == want]
        if found:
            return found[0]
    return entries[0] if tag is None and len(entries) == 1 else None


def _load_layout(store: Store, source: ArchiveSource) -> Loaded:
    if source.has(LAYOUT_FILE):
        marker = _read_json(source, LAYOUT_FILE)
        version = marker.get("imageLayoutVersion") if isinstance(marker, dict) else None
        if version != mt.OCI_LAYOUT_VERSION:
            raise ImageFormatError(
                f"{source.label}: {LAYOUT_FILE}: unsupported image layout version {version!r}"
            )
    try:
        index = Index.from_bytes(source.read_bytes(INDEX_FILE, _MAX_JSON))
    except ImageFormatError as e:
        raise ImageFormatError(f"{source.label}: {INDEX_FILE}: {e.message}") from e
    images: Loaded = []
    for entry in index.manifests:
        _ingest_tree(store, source, entry, required=True)
        plain = Descriptor(entry.media_type, entry.digest, entry.size, platform=entry.platform)
        images.append((_entry_name(source, entry), plain))
    if not images:
        raise ImageFormatError(f"{source.label}: {INDEX_FILE} lists no images")
    return images


def _entry_name(source: ArchiveSource, entry: Descriptor) -> str | None:
    image_name = entry.annotation(mt.ANNOTATION_IMAGE_NAME)
    if image_name:
        return _image_name(source, INDEX_FILE, image_name)
    ref = entry.annotation(mt.ANNOTATION_REF_NAME)
    # a bare ref name such as "1" or "latest" is only a tag: it names no repository
    if ref and ("/" in ref or ":" in ref):
        try:
            return normalize_tag(ref)
        except InvalidReference:
            return None  # ref names are free-form in the OCI spec; this one is no image name
    return None


def _image_name(source: ArchiveSource, where: str, name: str) -> str:
    try:
        return normalize_tag(name)
    except InvalidReference as e:
        raise ImageFormatError(f"{source.label}: {where}: {e.message}", hint=e.hint) from e


def _ingest_tree(store: Store, source: ArchiveSource, desc: Descriptor, *, required: bool) -> bool:
    """Ingest a manifest or index and everything it references; children before parents.

    A child of an index may be absent (a layout may hold some platforms only): then False.
    """
    name = _blob_member(desc.digest)
    if not source.has(name):
        if store.content.has(desc.digest):
            return True
        if not required:
            return False
        raise ImageFormatError(f"{source.label}: {name} is missing ({desc.media_type})")
    if desc.media_type in mt.INDEXES:
        data = _read_verified(source, name, desc)
        index = Index.from_bytes(data)
        present = [_ingest_tree(store, source, c, required=False) for c in index.manifests]
        if index.manifests and not any(present):
            raise ImageFormatError(f"{source.label}: none of the manifests of {name} are present")
        store.content.put_bytes(data, expected=desc.digest)
    elif desc.media_type in mt.MANIFESTS:
        data = _read_verified(source, name, desc)
        manifest = Manifest.from_bytes(data, desc.media_type)
        for part in (manifest.config, *manifest.layers):
            _ingest_blob(store, source, part)
        store.content.put_bytes(data, expected=desc.digest)
    else:
        _ingest_blob(store, source, desc)
    return True


def _ingest_blob(store: Store, source: ArchiveSource, desc: Descriptor) -> None:
    name = _blob_member(desc.digest)
    if not source.has(name):
        if store.content.has(desc.digest):
            return
        raise ImageFormatError(f"{source.label}: {name} is missing ({desc.media_type})")
    _ingest(store, source, name, desc.digest, desc.size)


def _blob_member(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def _read_verified(source: ArchiveSource, name: str, desc: Descriptor) -> bytes:
    data = source.read_bytes(name, _MAX_JSON)
    h = hashlib.new(desc.digest.algorithm, data)
    if h.hexdigest() != desc.digest.hex:
        raise ImageFormatError(
            f"{source.label}: {name}: content has digest {Digest.from_hash(h)}, "
            f"expected {desc.digest}",
            hint="the archive is corrupt or was modified; export it again",
        )
    return data


def _ingest(
    store: Store, source: ArchiveSource, name: str, expected: Digest | None, size: int | None
) -> tuple[Digest, int]:
    """Stream one member into the store, verified against `expected` when given."""
    if expected is not None and store.content.has(expected):
        return expected, store.content.size(expected)
    try:
        with source.open(name) as data, store.content.ingest() as ingest:
            while chunk := data.read(_CHUNK):
                ingest.write(chunk)
            digest, written = ingest.commit(expected=expected)
    except DigestMismatch as e:
        raise ImageFormatError(
            f"{source.label}: {name}: content has digest {e.actual}, expected {e.expected}",
            hint="the archive is corrupt or was modified; export it again",
        ) from e
    if size is not None and written != size:
        raise ImageFormatError(
            f"{source.label}: {name}: has {written} bytes, its descriptor says {size}"
        )
    return digest, written


# -- classic docker-archive ----------------------------------------------------------------------


def _load_docker(store: Store, source: ArchiveSource) -> Loaded:
    items = _read_json(source, MANIFEST_FILE)
    if not isinstance(items, list) or not items:
        raise ImageFormatError(f"{source.label}: {MANIFEST_FILE} is not a non-empty JSON list")
    images: Loaded = []
    for item in items:
        if not isinstance(item, dict):
            raise ImageFormatError(f"{source.label}: {MANIFEST_FILE}: entry is not an object")
        desc = _load_docker_image(store, source, item)
        tags = item.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ImageFormatError(f"{source.label}: {MANIFEST_FILE}: RepoTags is not a list")
        images.extend((_image_name(source, MANIFEST_FILE, t), desc) for t in tags)
        if not tags:
            images.append((None, desc))
    return images


def _load_docker_image(store: Store, source: ArchiveSource, item: dict[str, Any]) -> Descriptor:
    config_name, layer_names = item.get("Config"), item.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise ImageFormatError(f"{source.label}: {MANIFEST_FILE}: entry without Config/Layers")
    config_bytes = source.read_bytes(config_name, _MAX_JSON)
    named = _digest_in_name(config_name)
    if named is not None and sha256_bytes(config_bytes) != named:
        raise ImageFormatError(
            f"{source.label}: {config_name}: content has digest {sha256_bytes(config_bytes)}, "
            f"expected {named}",
            hint="the archive is corrupt or was modified; export it again",
        )
    try:
        diff_ids = ImageConfig.from_bytes(config_bytes).diff_ids
    except ImageFormatError as e:
        raise ImageFormatError(f"{source.label}: {config_name}: {e.message}") from e
    if len(diff_ids) != len(layer_names):
        raise ImageFormatError(
            f"{source.label}: {MANIFEST_FILE} lists {len(layer_names)} layers for {config_name}, "
            f"whose rootfs.diff_ids has {len(diff_ids)}"
        )
    layers = tuple(
        _ingest_docker_layer(store, source, str(name), diff_id)
        for name, diff_id in zip(layer_names, diff_ids, strict=True)
    )
    config_digest = store.content.put_bytes(config_bytes)
    manifest = Manifest(Descriptor(mt.OCI_CONFIG, config_digest, len(config_bytes)), layers)
    desc = manifest.descriptor()
    store.content.put_bytes(manifest.to_bytes(), expected=desc.digest)
    return desc


def _ingest_docker_layer(
    store: Store, source: ArchiveSource, name: str, diff_id: Digest
) -> Descriptor:
    """Store a classic layer file as an uncompressed tar, verified against its diff_id.

    The files are normally plain tars; `docker load` also accepts compressed ones, which are
    decompressed here so that every layer of a loaded classic image has digest == diff_id.
    """
    with source.open(name) as data:
        compression = detect_compression(data.read(6))
    if store.content.has(diff_id) and compression == "none":
        return Descriptor(mt.OCI_LAYER, diff_id, store.content.size(diff_id))
    try:
        with source.open(name) as data, store.content.ingest() as ingest:
            plain = open_layer(data, compression)
            while chunk := plain.read(_CHUNK):
                ingest.write(chunk)
            digest, size = ingest.commit(expected=diff_id)
    except DigestMismatch as e:
        raise ImageFormatError(
            f"{source.label}: {name}: layer has diff_id {e.actual}, but the config's "
            f"rootfs.diff_ids says {e.expected}",
            hint="the archive is corrupt or its manifest.json lists the layers wrongly",
        ) from e
    except _DECOMPRESS_ERRORS as e:
        raise ImageFormatError(f"{source.label}: {name}: cannot decompress ({e})") from e
    return Descriptor(mt.OCI_LAYER, digest, size)


def _digest_in_name(name: str) -> Digest | None:
    """The digest a member name carries: 'blobs/sha256/<hex>' or '<hex>.json'."""
    parts = clean_name(name).split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        candidate = f"{parts[1]}:{parts[2]}"
    elif len(parts) == 1 and parts[0].endswith(".json"):
        candidate = "sha256:" + parts[0].removesuffix(".json")
    else:
        return None
    return Digest(candidate) if is_digest(candidate) else None


def _read_json(source: ArchiveSource, name: str) -> Any:
    try:
        return json.loads(source.read_bytes(name, _MAX_JSON))
    except ValueError as e:
        raise ImageFormatError(f"{source.label}: {name} is not valid JSON: {e}") from e

