"""OCI layout directories: structure, names, merging into an existing layout, blob sharing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import ExportError
from layerbuild.export.load import load
from layerbuild.export.oci_layout import (
    image_blobs,
    index_entries,
    merge_entries,
    write_oci_layout,
)
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Index
from layerbuild.store.layout import Store
from tests.unit.export.export_images import DEFAULT_LAYERS, BuiltImage, build_image


def _index(dest: Path) -> list[dict[str, object]]:
    entries = json.loads((dest / "index.json").read_text())["manifests"]
    assert isinstance(entries, list)
    return entries


def test_layout_has_marker_index_and_every_blob(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    write_oci_layout(store, image.desc, dest, ["app:1"])

    assert json.loads((dest / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    [entry] = _index(dest)
    assert entry["digest"] == image.desc.digest
    assert entry["mediaType"] == mt.OCI_MANIFEST
    assert entry["annotations"] == {
        "org.opencontainers.image.ref.name": "1",
        "io.containerd.image.name": "docker.io/library/app:1",
    }
    blobs = sorted(p.name for p in (dest / "blobs" / "sha256").iterdir())
    wanted = [image.desc.digest, image.manifest.config.digest]
    wanted += [layer.digest for layer in image.manifest.layers]
    assert blobs == sorted(d.hex for d in wanted)
    for path in (dest / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def test_untagged_name_gets_latest_and_registry_names_stay(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    write_oci_layout(store, image.desc, dest, ["localhost:5000/team/app"])
    [entry] = _index(dest)
    assert entry["annotations"] == {
        "org.opencontainers.image.ref.name": "latest",
        "io.containerd.image.name": "localhost:5000/team/app:latest",
    }


def test_no_tags_gives_one_unnamed_entry(store: Store, image: BuiltImage, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    write_oci_layout(store, image.desc, dest, [])
    [entry] = _index(dest)
    assert "annotations" not in entry
    assert entry["digest"] == image.desc.digest


def test_blobs_are_hard_links_to_the_store(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    write_oci_layout(store, image.desc, dest, ["app:1"])
    layer = image.manifest.layers[0].digest
    exported = dest / "blobs" / "sha256" / layer.hex
    assert exported.stat().st_ino == store.content.path(layer).stat().st_ino


def test_existing_layout_gains_images_and_same_name_is_replaced(
    store: Store, tmp_path: Path
) -> None:
    first = build_image(store, DEFAULT_LAYERS)
    second = build_image(store, [{"x": b"second"}])
    third = build_image(store, [{"y": b"third"}])
    dest = tmp_path / "shared"
    write_oci_layout(store, first.desc, dest, ["app:1"])
    write_oci_layout(store, second.desc, dest, ["other:2"])
    assert [e["digest"] for e in _index(dest)] == [first.desc.digest, second.desc.digest]

    write_oci_layout(store, third.desc, dest, ["app:1"])
    entries = _index(dest)
    assert [e["digest"] for e in entries] == [second.desc.digest, third.desc.digest]
    # blobs of the replaced image stay: other entries of other tools may still share them
    assert (dest / "blobs" / "sha256" / first.desc.digest.hex).is_file()
    assert (dest / "blobs" / "sha256" / third.desc.digest.hex).is_file()


def test_merge_keeps_foreign_entries_and_replaces_unnamed_same_digest() -> None:
    d1 = Descriptor(mt.OCI_MANIFEST, sha256_bytes(b"1"), 10)
    d2 = Descriptor(mt.OCI_MANIFEST, sha256_bytes(b"2"), 10)
    named = d2.with_annotations({mt.ANNOTATION_REF_NAME: "v1"})
    merged = merge_entries([d1, d2, named], [d2])
    assert merged == [d1, named, d2]


def test_entries_keep_descriptor_annotations_but_not_old_names() -> None:
    """--annotation manifest-descriptor: values reach index.json; the store's names do not."""
    desc = Descriptor(mt.OCI_MANIFEST, sha256_bytes(b"1"), 10).with_annotations(
        {"org.example.a": "1", mt.ANNOTATION_REF_NAME: "old:1", mt.ANNOTATION_IMAGE_NAME: "x"}
    )
    (entry,) = index_entries(desc, ["app:2"])
    assert dict(entry.annotations) == {
        "org.example.a": "1",
        mt.ANNOTATION_REF_NAME: "2",
        mt.ANNOTATION_IMAGE_NAME: "docker.io/library/app:2",
    }
    (unnamed,) = index_entries(desc, [])
    assert unnamed.annotations == (("org.example.a", "1"),)
    # an unnamed entry with annotations is still replaced by the same digest unnamed
    assert merge_entries([unnamed], [unnamed]) == [unnamed]


def test_write_into_non_layout_directory_is_refused(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an OCI image layout"):
        write_oci_layout(store, image.desc, dest, ["app:1"])
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt"]


def test_write_over_a_file_is_refused(store: Store, image: BuiltImage, tmp_path: Path) -> None:
    dest = tmp_path / "file"
    dest.write_text("x")
    with pytest.raises(ExportError, match="not a directory"):
        write_oci_layout(store, image.desc, dest, [])


def test_missing_layer_blob_is_an_export_error(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    store.content.delete(image.manifest.layers[1].digest)
    with pytest.raises(ExportError, match=image.manifest.layers[1].digest):
        write_oci_layout(store, image.desc, tmp_path / "out", ["app:1"])
    assert not (tmp_path / "out" / "index.json").exists()


def test_index_exports_only_children_whose_blobs_are_stored(store: Store, tmp_path: Path) -> None:
    amd = build_image(store, [{"a": b"amd64"}])
    arm = build_image(store, [{"a": b"arm64"}])
    store.content.delete(arm.manifest.layers[0].digest)
    index = Index(
        (
            Descriptor(amd.desc.media_type, amd.desc.digest, amd.desc.size, platform=Platform()),
            Descriptor(
                arm.desc.media_type, arm.desc.digest, arm.desc.size, platform=Platform("arm64")
            ),
        )
    )
    data = index.to_bytes()
    index_desc = Descriptor(mt.OCI_INDEX, store.content.put_bytes(data), len(data))

    blobs = {b.digest for b in image_blobs(store, index_desc)}
    assert blobs == {index_desc.digest, amd.desc.digest, amd.manifest.config.digest} | {
        layer.digest for layer in amd.manifest.layers
    }

    dest = tmp_path / "out"
    write_oci_layout(store, index_desc, dest, ["multi:1"])
    [entry] = _index(dest)
    assert entry["mediaType"] == mt.OCI_INDEX
    loaded = load(store, dest)
    assert loaded == [("multi:1", index_desc)]


def test_round_trip_through_load_keeps_the_manifest_digest(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    write_oci_layout(store, image.desc, dest, ["app:1", "app:latest"])
    other = Store.open(tmp_path / "other-store")
    loaded = load(other, dest)
    assert loaded == [("app:1", image.desc), ("app:latest", image.desc)]
    assert other.refs.get("app:1") is not None
    assert other.refs.get("app:1").digest == image.desc.digest  # type: ignore[union-attr]
    for layer in image.manifest.layers:
        assert other.content.read_bytes(layer.digest) == store.content.read_bytes(layer.digest)
