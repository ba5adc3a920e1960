"""validate_image: a valid image passes; every kind of inconsistency is reported with values."""

from __future__ import annotations

import dataclasses
import io

import pytest

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.errors import StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.compress import pack_layer
from layerbuild.image.config import History, ImageConfig
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Index, Layer, Manifest
from layerbuild.image.validate import validate_image
from tests.support.random_layer import random_layer


class Blobs(dict[Digest, bytes]):
    def put(self, data: bytes) -> Digest:
        digest = sha256_bytes(data)
        self[digest] = data
        return digest

    def read(self, digest: Digest) -> bytes:
        if digest not in self:
            raise StoreError(f"blob {digest} is not in the store")
        return self[digest]


def build(
    blobs: Blobs,
    compressions: tuple[str, ...] = ("gzip", "zstd"),
    manifest_type: str = mt.OCI_MANIFEST,
    history_extra: int = 0,
) -> Descriptor:
    layers: list[Layer] = []
    for i, compression in enumerate(compressions):
        sink = io.BytesIO()
        layers.append(pack_layer(random_layer(i, big_files=0), sink, compression=compression))
        blobs.put(sink.getvalue())
    config = ImageConfig(
        diff_ids=tuple(layer.diff_id for layer in layers),
        history=tuple(History(created_by=f"step {i}") for i in range(len(layers) + history_extra))
        + (History(created_by="ENV", empty_layer=True),),
    )
    config_type = mt.OCI_CONFIG if manifest_type == mt.OCI_MANIFEST else mt.DOCKER_CONFIG
    config_desc = Descriptor(config_type, blobs.put(config.to_bytes()), len(config.to_bytes()))
    manifest = Manifest(config_desc, tuple(layer.descriptor for layer in layers), manifest_type)
    blobs.put(manifest.to_bytes())
    return manifest.descriptor()


def test_a_well_formed_image_has_no_problems() -> None:
    blobs = Blobs()
    assert validate_image(blobs.read, build(blobs)) == []
    assert validate_image(blobs.read, build(blobs, ("none",))) == []


def test_docker_manifest_with_zstd_layer_and_oci_config() -> None:
    blobs = Blobs()
    desc = build(blobs, ("zstd",), manifest_type=mt.DOCKER_MANIFEST)
    problems = validate_image(blobs.read, desc)
    assert len(problems) == 1 and "zstd layers need an OCI manifest" in problems[0]


def test_tampered_layer_blob_reports_digest_and_size() -> None:
    blobs = Blobs()
    desc = build(blobs, ("gzip",))
    manifest = Manifest.from_bytes(blobs[desc.digest])
    layer_digest = manifest.layers[0].digest
    blobs[layer_digest] = blobs[layer_digest] + b"junk"
    problems = validate_image(blobs.read, desc)
    assert any("layer 0: digest mismatch" in p and str(layer_digest) in p for p in problems)
    assert any("size mismatch" in p and "blob has" in p for p in problems)


def rewrite_manifest(blobs: Blobs, desc: Descriptor, **changes: object) -> Descriptor:
    manifest = dataclasses.replace(Manifest.from_bytes(blobs[desc.digest]), **changes)  # type: ignore[arg-type]
    blobs.put(manifest.to_bytes())
    return manifest.descriptor()


def test_wrong_diff_id_layer_count_and_history() -> None:
    blobs = Blobs()
    desc = build(blobs, ("gzip", "zstd"), history_extra=1)
    manifest = Manifest.from_bytes(blobs[desc.digest])
    swapped = rewrite_manifest(blobs, desc, layers=(manifest.layers[1], manifest.layers[0]))
    problems = validate_image(blobs.read, swapped)
    assert sum("diff_id mismatch: config says sha256:" in p for p in problems) == 2
    assert any("history has 3 non-empty entries, manifest has 2" in p for p in problems)
    dropped = rewrite_manifest(blobs, desc, layers=manifest.layers[:1])
    assert any(
        "config has 2 diff_ids, manifest has 1" in p for p in validate_image(blobs.read, dropped)
    )


def test_missing_blobs_and_bad_descriptors_are_findings() -> None:
    blobs = Blobs()
    desc = build(blobs, ("gzip",))
    manifest = Manifest.from_bytes(blobs[desc.digest])
    del blobs[manifest.config.digest]
    problems = validate_image(blobs.read, desc)
    assert len(problems) == 1 and "config" in problems[0] and "cannot read" in problems[0]
    wrong_size = Descriptor(desc.media_type, desc.digest, desc.size + 1)
    assert "descriptor says" in validate_image(blobs.read, wrong_size)[0]
    wrong_type = Descriptor(mt.DOCKER_MANIFEST, desc.digest, desc.size)
    assert any("manifest media type mismatch" in p for p in validate_image(blobs.read, wrong_type))


def test_config_media_type_must_match_manifest() -> None:
    blobs = Blobs()
    desc = build(blobs, ("gzip",))
    manifest = Manifest.from_bytes(blobs[desc.digest])
    config = dataclasses.replace(manifest.config, media_type=mt.DOCKER_CONFIG)
    problems = validate_image(blobs.read, rewrite_manifest(blobs, desc, config=config))
    assert problems == [
        f"config media type mismatch: a {mt.OCI_MANIFEST} manifest needs {mt.OCI_CONFIG}, "
        f"config descriptor says {mt.DOCKER_CONFIG}"
    ]


@pytest.mark.parametrize("corrupt", [True, False])
def test_index_validates_each_manifest(corrupt: bool) -> None:
    blobs = Blobs()
    good = build(blobs, ("gzip",))
    child = dataclasses.replace(good, platform=Platform("arm64"))
    if corrupt:
        child = dataclasses.replace(child, size=child.size - 1)
    index = Index((child,))
    index_desc = Descriptor(mt.OCI_INDEX, blobs.put(index.to_bytes()), len(index.to_bytes()))
    problems = validate_image(blobs.read, index_desc)
    assert bool(problems) is corrupt
    assert all("linux/arm64" in p for p in problems)
