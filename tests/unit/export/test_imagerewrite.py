"""The image an image exporter writes: layers converted (and remembered), media types,
annotations; the config never changes."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Collection

import pytest
import zstandard

from layerbuild.digest import Digest
from layerbuild.errors import ExportError, ImageFormatError
from layerbuild.export.imageoptions import ImageOptions
from layerbuild.export.imagerewrite import apply_image_options
from layerbuild.image import mediatypes as mt
from layerbuild.image.annotations import Annotations
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.manifest import Index, Layer, Manifest
from layerbuild.store.conversions import Conversion, convert_layer
from layerbuild.store.images import write_image
from layerbuild.store.layout import Store
from tests.unit.export.export_images import BuiltImage

ZSTD = ImageOptions(compression="zstd")


def _manifest(store: Store, desc: Descriptor) -> Manifest:
    return Manifest.from_bytes(store.content.read_bytes(desc.digest), desc.media_type)


def _top(image: BuiltImage) -> Collection[Digest]:
    """The image's last layer, as if the build's one step made it."""
    return {image.manifest.layers[-1].digest}


def _plain(store: Store, layer: Descriptor) -> bytes:
    blob = store.content.read_bytes(layer.digest)
    if layer.media_type in (mt.OCI_LAYER_ZSTD, mt.DOCKER_LAYER_ZSTD):
        return zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    if layer.media_type in (mt.OCI_LAYER_GZIP, mt.DOCKER_LAYER_GZIP):
        return gzip.decompress(blob)
    return blob


def test_options_that_change_nothing_give_the_same_descriptor(
    store: Store, image: BuiltImage
) -> None:
    assert apply_image_options(store, image.desc, ImageOptions(), _top(image)) is image.desc
    same = apply_image_options(store, image.desc, ImageOptions(compression="gzip"), _top(image))
    assert same.digest == image.desc.digest  # the layers are gzip already: nothing to do


def test_zstd_converts_the_built_layers_only(store: Store, image: BuiltImage) -> None:
    desc = apply_image_options(store, image.desc, ZSTD, _top(image))
    manifest = _manifest(store, desc)
    assert [d.media_type for d in manifest.layers] == [mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD]
    assert manifest.layers[0] == image.manifest.layers[0]
    assert manifest.config == image.manifest.config  # diff_ids unchanged: the same config
    top = manifest.layers[1]
    assert store.content.read_bytes(top.digest)[:4] == b"\x28\xb5\x2f\xfd"
    assert _plain(store, top) == image.layer_tars[1]
    assert desc.platform == image.desc.platform


def test_force_converts_every_layer(store: Store, image: BuiltImage) -> None:
    forced = ImageOptions(compression="zstd", force=True, level=19)
    manifest = _manifest(store, apply_image_options(store, image.desc, forced, ()))
    assert [d.media_type for d in manifest.layers] == [mt.OCI_LAYER_ZSTD] * 2
    for layer, tar in zip(manifest.layers, image.layer_tars, strict=True):
        assert _plain(store, layer) == tar


def test_uncompressed_layers(store: Store, image: BuiltImage) -> None:
    opts = ImageOptions(compression="none", force=True)
    manifest = _manifest(store, apply_image_options(store, image.desc, opts, ()))
    assert [d.media_type for d in manifest.layers] == [mt.OCI_LAYER] * 2
    assert [store.content.read_bytes(d.digest) for d in manifest.layers] == list(image.layer_tars)
    for layer, tar in zip(manifest.layers, image.layer_tars, strict=True):
        assert layer.digest == "sha256:" + hashlib.sha256(tar).hexdigest()


def test_a_second_export_reuses_the_converted_blob(store: Store, image: BuiltImage) -> None:
    first = apply_image_options(store, image.desc, ZSTD, _top(image))
    blobs = set(store.content.digests())
    records = list(store.conversions_dir.iterdir())
    assert len(records) == 1
    second = apply_image_options(store, image.desc, ZSTD, _top(image))
    assert second == first
    assert set(store.content.digests()) == blobs
    # with the converted blob gone (gc), the record is a miss: the layer is converted again
    top = _manifest(store, first).layers[1]
    store.content.delete(top.digest)
    third = apply_image_options(store, image.desc, ZSTD, _top(image))
    assert third == first and store.content.has(top.digest)


def test_another_level_is_another_conversion(store: Store, image: BuiltImage) -> None:
    apply_image_options(store, image.desc, ZSTD, _top(image))
    apply_image_options(store, image.desc, ImageOptions(compression="zstd", level=19), _top(image))
    names = sorted(p.name.split(".", 1)[1] for p in store.conversions_dir.iterdir())
    assert names == ["zstd.19", "zstd.default"]


def test_docker_media_types(store: Store, image: BuiltImage) -> None:
    opts = ImageOptions(compression="zstd", oci_mediatypes=False)
    desc = apply_image_options(store, image.desc, opts, _top(image))
    assert desc.media_type == mt.DOCKER_MANIFEST
    manifest = _manifest(store, desc)
    assert manifest.media_type == mt.DOCKER_MANIFEST
    assert manifest.config.media_type == mt.DOCKER_CONFIG
    assert manifest.config.digest == image.manifest.config.digest
    assert [d.media_type for d in manifest.layers] == [mt.DOCKER_LAYER_GZIP, mt.DOCKER_LAYER_ZSTD]
    assert json.loads(store.content.read_bytes(desc.digest))["mediaType"] == mt.DOCKER_MANIFEST


def test_annotations_on_a_lone_manifest_wrap_it_in_an_index(
    store: Store, image: BuiltImage
) -> None:
    notes = Annotations(
        manifest=(("m", "1"),),
        index=(("i", "2"),),
        manifest_descriptor=(("md", "3"),),
        index_descriptor=(("id", "4"),),
    )
    desc = apply_image_options(store, image.desc, ImageOptions(annotations=notes), ())
    assert desc.media_type == mt.OCI_INDEX
    assert desc.annotations == (("id", "4"),)
    index = Index.from_bytes(store.content.read_bytes(desc.digest))
    assert index.annotations == (("i", "2"),)
    (child,) = index.manifests
    assert child.annotations == (("md", "3"),)
    assert _manifest(store, child).annotations == (("m", "1"),)


def test_annotations_of_an_index_image_merge_with_its_own(store: Store, image: BuiltImage) -> None:
    """A build with --annotation index:... stored an index; -o annotations go over it, a key
    given again wins."""
    config = ImageConfig.from_bytes(image.config_bytes)
    layers = [
        Layer(d, layer.digest, layer.size, layer.media_type)
        for d, layer in zip(config.diff_ids, image.manifest.layers, strict=True)
    ]
    built = write_image(
        store,
        config,
        layers,
        Annotations(manifest=(("a", "old"), ("b", "kept")), index=(("x", "1"),)),
    )
    assert built.media_type == mt.OCI_INDEX
    opts = ImageOptions(
        compression="zstd", annotations=Annotations(manifest=(("a", "new"),), index=(("y", "2"),))
    )
    desc = apply_image_options(store, built, opts, _top(image))
    index = Index.from_bytes(store.content.read_bytes(desc.digest))
    assert index.annotations == (("x", "1"), ("y", "2"))
    manifest = _manifest(store, index.manifests[0])
    assert manifest.annotations == (("a", "new"), ("b", "kept"))
    assert manifest.layers[-1].media_type == mt.OCI_LAYER_ZSTD
    with pytest.raises(ExportError, match="Docker media types"):
        apply_image_options(store, built, ImageOptions(oci_mediatypes=False), ())


def test_a_layer_that_disagrees_with_its_config_is_not_exported(
    store: Store, image: BuiltImage
) -> None:
    layer = image.manifest.layers[0]
    wrong = Digest("sha256:" + "0" * 64)
    with pytest.raises(ImageFormatError, match="uncompresses to"):
        convert_layer(store, Conversion(layer, wrong, "zstd", None))
    assert not store.conversions_dir.exists() or not any(store.conversions_dir.iterdir())
