"""The image an image exporter writes: the stored one with its --output options applied.

Layers are converted (store/conversions.py) when `compression=` differs from theirs and the
layer is one this build's steps made, or any layer with `force-compression=true`; the diff_ids
do not change, so the config's bytes and digest stay, only the media types of the manifest's
descriptors follow `oci-mediatypes=`. Annotations of the options go over the image's own (a
key given again wins); index or index-descriptor ones wrap a lone manifest in an index, as
store/images.write_image does for --annotation. The new manifest (and index) go into the store
as ordinary blobs, so every writer (layout, tarballs, push) reads the exported image there.
The caller holds the store lock shared, so that gc cannot take converted blobs before they are
written out.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from layerbuild.digest import Digest
from layerbuild.errors import ExportError
from layerbuild.export.imageoptions import ImageOptions
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Manifest

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

Pairs = tuple[tuple[str, str], ...]


def apply_image_options(
    store: Store, desc: Descriptor, opts: ImageOptions, built: Collection[Digest]
) -> Descriptor:
    """The descriptor of the image `desc` as `opts` exports it (`desc` itself when they
    change nothing). `built`: the layers this build's steps made (compression= converts
    those; force-compression every layer)."""
    if not opts.changes_image:
        return desc
    if desc.media_type in mt.INDEXES:
        return _rewrite_index(store, desc, opts, built)
    manifest_desc = _rewrite_manifest(store, desc, opts, built)
    if not opts.annotations.wants_index:
        return manifest_desc
    return _put_index(store, Index((manifest_desc,)), opts, ())


def _rewrite_index(
    store: Store, desc: Descriptor, opts: ImageOptions, built: Collection[Digest]
) -> Descriptor:
    index = Index.from_bytes(store.content.read_bytes(desc.digest))
    if not opts.oci_mediatypes and (index.annotations or desc.annotations):
        raise ExportError(
            f"image {desc.digest.short} is an index with annotations, which Docker media "
            "types cannot carry",
            hint="leave out oci-mediatypes=false, or build without index annotations",
        )
    children = tuple(
        _rewrite_manifest(store, child, opts, built)
        if child.media_type in mt.MANIFESTS and store.content.has(child.digest)
        else child  # a platform the store does not hold: exported as it is named
        for child in index.manifests
    )
    return _put_index(
        store, Index(children, annotations=index.annotations), opts, desc.annotations
    )


def _put_index(store: Store, index: Index, opts: ImageOptions, own: Pairs) -> Descriptor:
    media_type = mt.OCI_INDEX if opts.oci_mediatypes else mt.DOCKER_MANIFEST_LIST
    notes = opts.annotations
    data = Index(index.manifests, media_type, _merge(index.annotations, notes.index)).to_bytes()
    digest = store.content.put_bytes(data)
    return Descriptor(media_type, digest, len(data), _merge(own, notes.index_descriptor))


def _rewrite_manifest(
    store: Store, desc: Descriptor, opts: ImageOptions, built: Collection[Digest]
) -> Descriptor:
    manifest = Manifest.from_bytes(store.content.read_bytes(desc.digest), desc.media_type)
    config = ImageConfig.from_bytes(store.content.read_bytes(manifest.config.digest))
    if len(config.diff_ids) != len(manifest.layers):
        raise ExportError(
            f"image {desc.digest.short}: {len(manifest.layers)} layers but "
            f"{len(config.diff_ids)} diff_ids in its config",
            hint="run `layerbuild fsck`; rebuild the image",
        )
    oci = opts.oci_mediatypes
    layers = tuple(
        _layer(store, layer, diff_id, opts, layer.digest in built)
        for layer, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
    )
    config_type = mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG
    rewritten = Manifest(
        config=Descriptor(config_type, manifest.config.digest, manifest.config.size),
        layers=layers,
        media_type=mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST,
        annotations=_merge(manifest.annotations, opts.annotations.manifest),
    )
    data = rewritten.to_bytes()
    digest = store.content.put_bytes(data)
    notes = _merge(desc.annotations, opts.annotations.manifest_descriptor)
    return Descriptor(rewritten.media_type, digest, len(data), notes, desc.platform)


def _layer(
    store: Store, layer: Descriptor, diff_id: Digest, opts: ImageOptions, built: bool
) -> Descriptor:
    try:
        have = mt.layer_compression(layer.media_type)
    except ValueError:
        return layer  # foreign or unknown layer types are passed on untouched, as BuildKit does
    want = opts.compression
    if want is not None and want != have and (built or opts.force):
        from layerbuild.store.conversions import Conversion, convert_layer  # codecs: to convert

        job = Conversion(layer, diff_id, want, opts.level)
        return convert_layer(store, job, oci=opts.oci_mediatypes)
    media_type = mt.layer_media_type(have, oci=opts.oci_mediatypes)
    return Descriptor(media_type, layer.digest, layer.size, layer.annotations, urls=layer.urls)


def _merge(own: Pairs, given: Pairs) -> Pairs:
    return tuple(sorted({**dict(own), **dict(given)}.items()))
