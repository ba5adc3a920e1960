"""load: classic docker-archives, and refusal of bad input with a message naming the file."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import ImageFormatError, UnsafeArchiveError
from layerbuild.export.load import load
from layerbuild.export.oci_layout import write_oci_layout
from layerbuild.export.oci_tar import write_oci_tar
from layerbuild.image import mediatypes as mt
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor
from layerbuild.store.layout import Store
from tests.unit.export.export_images import DEFAULT_LAYERS, BuiltImage, layer_tar

# (name, data), or (name, "symlink" | "hardlink", target)
Member = tuple[str, bytes] | tuple[str, str, str]


def _tar(path: Path, members: list[Member]) -> Path:
    with tarfile.open(path, "w") as tar:
        for member in members:
            info = tarfile.TarInfo(member[0])
            if len(member) == 3:
                info.type = tarfile.SYMTYPE if member[1] == "symlink" else tarfile.LNKTYPE
                info.linkname = member[2]
                tar.addfile(info)
            else:
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return path


def _classic_archive(path: Path, tags: list[str], *, swap_layers: bool = False) -> ImageConfig:
    """`docker save` before 25: <id>/layer.tar, <hex>.json, a symlinked repeated layer."""
    base = layer_tar(DEFAULT_LAYERS[0])
    top = layer_tar(DEFAULT_LAYERS[1])
    config = ImageConfig(diff_ids=(sha256_bytes(base), sha256_bytes(top), sha256_bytes(base)))
    config_bytes = config.to_bytes()
    layers = ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"]
    if swap_layers:
        layers[0], layers[1] = layers[1], layers[0]
    manifest = [{"Config": f"{config.digest.hex}.json", "RepoTags": tags, "Layers": layers}]
    _tar(
        path,
        [
            ("aaa/layer.tar", base),
            ("bbb/layer.tar", top),
            ("ccc/layer.tar", "symlink", "../aaa/layer.tar"),
            (f"{config.digest.hex}.json", config_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
            ("repositories", b"{}"),
        ],
    )
    return config


def test_classic_docker_archive_becomes_an_oci_image(store: Store, tmp_path: Path) -> None:
    config = _classic_archive(tmp_path / "old.tar", ["app:1", "quay.io/x/app:2"])
    loaded = load(store, tmp_path / "old.tar")

    assert [name for name, _ in loaded] == ["app:1", "quay.io/x/app:2"]
    desc = loaded[0][1]
    assert desc.media_type == mt.OCI_MANIFEST
    manifest = json.loads(store.content.read_bytes(desc.digest))
    assert manifest["config"]["digest"] == config.digest
    assert store.content.read_bytes(config.digest) == config.to_bytes()
    assert [x["digest"] for x in manifest["layers"]] == list(config.diff_ids)
    assert {x["mediaType"] for x in manifest["layers"]} == {mt.OCI_LAYER}
    tagged = store.refs.get("quay.io/x/app:2")
    assert tagged is not None and tagged.digest == desc.digest


def test_untagged_classic_image_is_returned_without_a_name(store: Store, tmp_path: Path) -> None:
    _classic_archive(tmp_path / "old.tar", [])
    [(name, desc)] = load(store, tmp_path / "old.tar")
    assert name is None
    assert store.content.has(desc.digest)
    assert store.refs.list() == {}


def test_layers_out_of_order_fail_the_diff_id_check(store: Store, tmp_path: Path) -> None:
    _classic_archive(tmp_path / "old.tar", ["app:1"], swap_layers=True)
    with pytest.raises(ImageFormatError, match=r"old.tar: bbb/layer.tar: layer has diff_id"):
        load(store, tmp_path / "old.tar")
    assert store.refs.list() == {}


def test_not_a_tar(store: Store, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not an archive" * 100)
    with pytest.raises(ImageFormatError, match=r"junk.tar: not a tar archive"):
        load(store, junk)


def test_missing_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImageFormatError, match="no such file"):
        load(store, tmp_path / "absent.tar")


def test_tar_without_index_or_manifest(store: Store, tmp_path: Path) -> None:
    archive = _tar(tmp_path / "x.tar", [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')])
    with pytest.raises(ImageFormatError, match=r"x.tar: has neither index.json nor manifest"):
        load(store, archive)


def _layout_copy(store: Store, image: BuiltImage, tmp_path: Path) -> Path:
    dest = tmp_path / "layout"
    write_oci_layout(store, image.desc, dest, ["app:1"])
    return dest


def test_missing_blob_in_a_layout_directory(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = _layout_copy(store, image, tmp_path)
    layer = image.manifest.layers[1].digest
    (dest / "blobs" / "sha256" / layer.hex).unlink()
    other = Store.open(tmp_path / "other")
    with pytest.raises(ImageFormatError, match=rf"layout: blobs/sha256/{layer.hex} is missing"):
        load(other, dest)
    assert other.refs.list() == {}


def test_corrupt_blob_is_a_digest_mismatch(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = _layout_copy(store, image, tmp_path)
    layer = image.manifest.layers[0].digest
    blob = dest / "blobs" / "sha256" / layer.hex
    blob.unlink()  # a hard link to the store: replace, do not write through
    blob.write_bytes(b"tampered")
    other = Store.open(tmp_path / "other")
    with pytest.raises(ImageFormatError, match=rf"{layer.hex}: content has digest sha256:"):
        load(other, dest)
    assert not other.content.has(layer)


def test_corrupt_manifest_is_refused(store: Store, image: BuiltImage, tmp_path: Path) -> None:
    dest = _layout_copy(store, image, tmp_path)
    manifest = dest / "blobs" / "sha256" / image.desc.digest.hex
    manifest.unlink()
    manifest.write_bytes(image.manifest.to_bytes().replace(b"schemaVersion", b"schemaversion"))
    with pytest.raises(ImageFormatError, match="content has digest"):
        load(Store.open(tmp_path / "other"), dest)


def test_bad_index_json(store: Store, image: BuiltImage, tmp_path: Path) -> None:
    dest = _layout_copy(store, image, tmp_path)
    (dest / "index.json").write_text("{not json")
    with pytest.raises(ImageFormatError, match=r"layout: index.json"):
        load(store, dest)


def test_symlink_out_of_the_archive_is_refused(store: Store, tmp_path: Path) -> None:
    config = ImageConfig(diff_ids=(sha256_bytes(b"x"),))
    manifest = [{"Config": "c.json", "RepoTags": ["app:1"], "Layers": ["l/layer.tar"]}]
    archive = _tar(
        tmp_path / "evil.tar",
        [
            ("c.json", config.to_bytes()),
            ("l/layer.tar", "symlink", "../../../../etc/passwd"),
            ("manifest.json", json.dumps(manifest).encode()),
        ],
    )
    with pytest.raises(UnsafeArchiveError, match="outside"):
        load(store, archive)


def test_manifest_json_path_escaping_a_directory_is_refused(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "extracted"
    root.mkdir()
    (tmp_path / "secret.json").write_text("{}")
    manifest = [{"Config": "../secret.json", "RepoTags": [], "Layers": []}]
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UnsafeArchiveError, match="outside"):
        load(store, root)


def test_link_loop_is_an_error_not_a_hang(store: Store, tmp_path: Path) -> None:
    manifest = [{"Config": "a.json", "RepoTags": [], "Layers": []}]
    archive = _tar(
        tmp_path / "loop.tar",
        [
            ("a.json", "symlink", "b.json"),
            ("b.json", "symlink", "a.json"),
            ("manifest.json", json.dumps(manifest).encode()),
        ],
    )
    with pytest.raises(ImageFormatError, match="too many levels of links"):
        load(store, archive)


def test_hard_linked_member_is_read_by_name(store: Store, tmp_path: Path) -> None:
    raw = layer_tar({"f": b"data"})
    config = ImageConfig(diff_ids=(sha256_bytes(raw), sha256_bytes(raw)))
    manifest = [{"Config": "c.json", "RepoTags": ["app:1"], "Layers": ["a.tar", "b.tar"]}]
    archive = _tar(
        tmp_path / "links.tar",
        [
            ("a.tar", raw),
            ("b.tar", "hardlink", "a.tar"),
            ("c.json", config.to_bytes()),
            ("manifest.json", json.dumps(manifest).encode()),
        ],
    )
    [(_, desc)] = load(store, archive)
    manifest_json = json.loads(store.content.read_bytes(desc.digest))
    assert [x["digest"] for x in manifest_json["layers"]] == [sha256_bytes(raw)] * 2


def test_ref_names_that_are_references_tag_and_bare_tags_do_not(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    plain = image.desc.with_annotations({})
    index = {
        "schemaVersion": 2,
        "manifests": [
            plain.with_annotations({mt.ANNOTATION_REF_NAME: "app:7"}).to_json(),
            plain.with_annotations({mt.ANNOTATION_REF_NAME: "stable"}).to_json(),
        ],
    }
    stream = io.BytesIO()
    write_oci_tar(store, image.desc, stream, [])
    with tarfile.open(fileobj=io.BytesIO(stream.getvalue())) as src:
        members: list[Member] = [
            (m.name, src.extractfile(m).read())  # type: ignore[union-attr]
            for m in src.getmembers()
            if m.isfile() and m.name != "index.json"
        ]
    archive = _tar(tmp_path / "skopeo.tar", [*members, ("index.json", json.dumps(index).encode())])
    loaded = load(store, archive)
    assert loaded == [("app:7", plain), (None, plain)]
    assert list(store.refs.list()) == ["app:7"]


def test_blob_already_in_the_store_need_not_be_in_the_archive(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = _layout_copy(store, image, tmp_path)
    (dest / "blobs" / "sha256" / image.manifest.layers[0].digest.hex).unlink()
    plain = Descriptor(mt.OCI_MANIFEST, image.desc.digest, image.desc.size)
    assert load(store, dest) == [("app:1", plain)]
