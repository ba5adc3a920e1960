"""OCI image layout directories (image-spec `image-layout.md`).

A layout is `oci-layout` ({"imageLayoutVersion": "1.0.0"}), `index.json` (an image index whose
entries name the images in the layout) and `blobs/<alg>/<hex>`. This module also holds what the
tar exporters share with it: the set of blobs an image needs, the index entries for its tags and
the naming rules, because an OCI tarball and a Docker >= 25 archive are this layout as a tar.

Naming follows buildx and skopeo: `org.opencontainers.image.ref.name` is the tag part (`1` for
`app:1`) and `io.containerd.image.name` the fully qualified name (`docker.io/library/app:1`),
which is what containerd and `docker load` read. Unlike buildx, which overwrites the directory,
writing into an existing layout adds the image, so several images can share one layout; an entry
with the same ref name or image name is replaced, since tools look images up by that name.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.digest import Digest, canonical_json
from layerbuild.errors import ExportError, ImageFormatError
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Manifest
from layerbuild.registry.reference import DEFAULT_TAG, parse_reference

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_BYTES = canonical_json({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION})

_COPY_CHUNK = 1 << 20
_NAME_KEYS = (mt.ANNOTATION_REF_NAME, mt.ANNOTATION_IMAGE_NAME)


def blob_name(digest: Digest) -> str:
    """The path of a blob inside a layout: `blobs/sha256/<hex>`."""
    return f"blobs/{digest.algorithm}/{digest.hex}"


# -- names ---------------------------------------------------------------------------------------


def tag_of(name: str) -> str:
    """The tag part of an image name ('1' for 'app:1', 'latest' for 'app')."""
    return parse_reference(name).tag or DEFAULT_TAG


def index_entries(desc: Descriptor, tags: Sequence[str]) -> list[Descriptor]:
    """The `index.json` entries for an image: one per tag, or one unnamed entry. The
    descriptor's own annotations (--annotation manifest-descriptor: or index-descriptor:)
    stay; the names it had in the store are replaced by `tags`."""
    kept = {k: v for k, v in desc.annotations if k not in _NAME_KEYS}
    if not tags:
        return [desc.with_annotations(kept)]
    return [
        desc.with_annotations(
            {
                **kept,
                mt.ANNOTATION_REF_NAME: tag_of(tag),
                mt.ANNOTATION_IMAGE_NAME: parse_reference(tag).full_name,
            }
        )
        for tag in tags
    ]


# -- the blobs an image needs --------------------------------------------------------------------


def image_blobs(store: Store, desc: Descriptor) -> list[Descriptor]:
    """Every blob of the image `desc` names, `desc` first, each once.

    For a manifest: the manifest, its config and its layers, all of which must be in the store.
    For an index: the index and each child manifest whose blobs are all in the store (a store
    holds only the platforms that were built or pulled; containerd exports the same way).
    """
    _require(store, desc, "image")
    if desc.media_type in mt.INDEXES:
        blobs = [desc]
        for child in _read_index(store, desc).manifests:
            blobs.extend(_closure(store, child) or ())
        if len(blobs) == 1:
            raise ExportError(
                f"index {desc.digest} has none of its platform images in the store",
                hint="build or pull at least one platform of it first",
            )
    elif desc.media_type in mt.MANIFESTS:
        manifest = _read_manifest(store, desc)
        for part in (manifest.config, *manifest.layers):
            _require(store, part, f"blob of image {desc.digest}")
        blobs = [desc, manifest.config, *manifest.layers]
    else:
        raise ExportError(f"{desc.digest} is a {desc.media_type}, not an image manifest or index")
    return _unique(blobs)


def _closure(store: Store, desc: Descriptor) -> list[Descriptor] | None:
    """The blobs of one index child, or None when any of them is not in the store."""
    if not store.content.has(desc.digest):
        return None
    if desc.media_type in mt.INDEXES:
        blobs = [desc]
        for child in _read_index(store, desc).manifests:
            blobs.extend(_closure(store, child) or ())
        return blobs
    if desc.media_type in mt.MANIFESTS:
        manifest = _read_manifest(store, desc)
        parts = [manifest.config, *manifest.layers]
        if not all(store.content.has(p.digest) for p in parts):
            return None
        return [desc, *parts]
    return [desc]


def _require(store: Store, desc: Descriptor, what: str) -> None:
    if not store.content.has(desc.digest):
        raise ExportError(
            f"{what} {desc.digest} ({desc.media_type}) is not in the store at {store.root}",
            hint="rebuild or pull the image; the store may have been garbage-collected",
        )


def _read_manifest(store: Store, desc: Descriptor) -> Manifest:
    return Manifest.from_bytes(store.content.read_bytes(desc.digest), desc.media_type)


def _read_index(store: Store, desc: Descriptor) -> Index:
    return Index.from_bytes(store.content.read_bytes(desc.digest))


def _unique(blobs: Iterable[Descriptor]) -> list[Descriptor]:
    seen: dict[Digest, Descriptor] = {}
    for blob in blobs:
        seen.setdefault(blob.digest, blob)
    return list(seen.values())


# -- writing a layout directory ------------------------------------------------------------------


def write_oci_layout(store: Store, desc: Descriptor, dest: Path, tags: Sequence[str]) -> None:
    """Write (or add) the image `desc` to the OCI image layout directory `dest`.

    Blobs go first and `index.json` last, each written atomically, so an interrupted export
    leaves the previous index intact and never an entry whose blobs are missing.
    """
    blobs = image_blobs(store, desc)
    try:
        old = _open_layout(dest)
        for blob in blobs:
            _place_blob(store, blob.digest, dest)
        if old is None:
            _write_atomic(dest / LAYOUT_FILE, LAYOUT_BYTES)
        entries = merge_entries(old.manifests if old else (), index_entries(desc, tags))
        index = Index(tuple(entries), annotations=old.annotations if old else ())
        _write_atomic(dest / INDEX_FILE, index.to_bytes())
    except OSError as e:
        raise ExportError(
            f"cannot write OCI layout {dest}: {e.strerror or e}",
            hint="check that the destination is writable and has free space",
        ) from e


def merge_entries(old: Iterable[Descriptor], new: Sequence[Descriptor]) -> list[Descriptor]:
    """Existing index entries plus `new`, dropping old ones that `new` replaces.

    An old entry is replaced when it has the same ref name or image name as a new one (lookups
    by ref name must stay unambiguous), or when both are unnamed and name the same digest.
    """
    ref_names = {n for d in new if (n := d.annotation(mt.ANNOTATION_REF_NAME))}
    image_names = {n for d in new if (n := d.annotation(mt.ANNOTATION_IMAGE_NAME))}
    unnamed = {d.digest for d in new if not _named(d)}

    def replaced(entry: Descriptor) -> bool:
        if not _named(entry):
            return entry.digest in unnamed
        return (
            entry.annotation(mt.ANNOTATION_REF_NAME) in ref_names
            or entry.annotation(mt.ANNOTATION_IMAGE_NAME) in image_names
        )

    return [e for e in old if not replaced(e)] + list(new)


def _named(entry: Descriptor) -> bool:
    return any(entry.annotation(k) for k in _NAME_KEYS)


def _open_layout(dest: Path) -> Index | None:
    """The index of the layout at dest, or None when dest is absent or an empty directory."""
    if not dest.exists():
        dest.mkdir(parents=True)
        return None
    if not dest.is_dir():
        raise ExportError(f"{dest} exists and is not a directory", hint="choose another --output")
    layout = dest / LAYOUT_FILE
    if not layout.exists():
        if any(dest.iterdir()):
            raise ExportError(
                f"{dest} is not empty and not an OCI image layout (it has no {LAYOUT_FILE})",
                hint="choose an empty or new directory, or an existing OCI layout",
            )
        return None
    try:
        version = _layout_version(layout.read_bytes())
    except ImageFormatError as e:
        raise ExportError(f"{layout}: {e.message}", hint="choose another directory") from e
    if version != mt.OCI_LAYOUT_VERSION:
        raise ExportError(
            f"{layout}: image layout version {version!r} is not supported "
            f"(only {mt.OCI_LAYOUT_VERSION})",
            hint="choose another directory",
        )
    index_path = dest / INDEX_FILE
    if not index_path.exists():
        return Index(())
    try:
        return Index.from_bytes(index_path.read_bytes())
    except ImageFormatError as e:
        raise ExportError(f"{index_path}: {e.message}", hint="repair or remove it") from e


def _layout_version(data: bytes) -> str:
    try:
        obj = json.loads(data)
    except ValueError as e:
        raise ImageFormatError(f"not JSON: {e}") from e
    if not isinstance(obj, dict) or not isinstance(obj.get("imageLayoutVersion"), str):
        raise ImageFormatError('not an image layout marker (no "imageLayoutVersion")')
    return str(obj["imageLayoutVersion"])


def _place_blob(store: Store, digest: Digest, dest: Path) -> None:
    """Put one blob into the layout: a hard link to the store's file when possible, else a copy.

    Blobs are content addressed, so a file already present with the right size is kept.
    """
    target = dest / blob_name(digest)
    size = store.content.size(digest)
    if target.is_file() and target.stat().st_size == size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{digest.hex}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            os.link(store.content.path(digest), tmp)
        except OSError:
            # another filesystem (EXDEV) or links not allowed (EPERM): copy, verified on read
            with store.content.open(digest) as src, open(tmp, "xb") as out:
                shutil.copyfileobj(src, out, _COPY_CHUNK)
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = [
    "INDEX_FILE",
    "LAYOUT_BYTES",
    "LAYOUT_FILE",
    "blob_name",
    "image_blobs",
    "index_entries",
    "merge_entries",
    "tag_of",
    "write_oci_layout",
]
