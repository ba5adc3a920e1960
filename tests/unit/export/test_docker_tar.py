"""docker-archive tarballs in the Docker >= 25 shape: manifest.json, repositories, layout."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.export.docker_tar import write_docker_tar
from layerbuild.export.load import load
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Index
from layerbuild.store.layout import Store
from tests.unit.export.export_images import BuiltImage


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            if f is not None:
                out[m.name] = f.read()
        return out


def test_manifest_json_points_at_layout_blobs(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "docker.tar"
    write_docker_tar(store, image.desc, dest, ["app:1", "docker.io/library/app:latest"])
    files = _members(dest)

    [item] = json.loads(files["manifest.json"])
    assert item["Config"] == f"blobs/sha256/{image.manifest.config.digest.hex}"
    assert item["RepoTags"] == ["app:1", "app:latest"]
    assert item["Layers"] == [f"blobs/sha256/{x.digest.hex}" for x in image.manifest.layers]
    for name in [item["Config"], *item["Layers"]]:
        assert name in files
    top = image.manifest.layers[-1].digest.hex
    assert json.loads(files["repositories"]) == {"app": {"1": top, "latest": top}}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    entries = json.loads(files["index.json"])["manifests"]
    assert [e["annotations"]["io.containerd.image.name"] for e in entries] == [
        "docker.io/library/app:1",
        "docker.io/library/app:latest",
    ]


def test_untagged_image_has_no_repositories_file(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "docker.tar"
    write_docker_tar(store, image.desc, dest, [])
    files = _members(dest)
    assert json.loads(files["manifest.json"])[0]["RepoTags"] == []
    assert "repositories" not in files


def test_round_trip_through_the_layout_keeps_the_digest(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "docker.tar"
    write_docker_tar(store, image.desc, dest, ["app:1"])
    other = Store.open(tmp_path / "other")
    assert load(other, dest) == [("app:1", image.desc)]


def test_old_loaders_view_through_manifest_json_gives_the_same_filesystem(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    """Without index.json, load reads manifest.json as old `docker load` does."""
    dest = tmp_path / "docker.tar"
    write_docker_tar(store, image.desc, dest, ["app:1"])
    stripped = tmp_path / "legacy.tar"
    with tarfile.open(dest) as src, tarfile.open(stripped, "w") as out:
        for m in src.getmembers():
            if m.name not in ("index.json", "oci-layout"):
                out.addfile(m, src.extractfile(m) if m.isfile() else None)

    other = Store.open(tmp_path / "other")
    [(name, desc)] = load(other, stripped)
    assert name == "app:1"
    manifest = json.loads(other.content.read_bytes(desc.digest))
    assert manifest["config"]["digest"] == image.manifest.config.digest
    # gzip layer files come back as the uncompressed tars, whose digests are the diff_ids
    assert [x["mediaType"] for x in manifest["layers"]] == [mt.OCI_LAYER, mt.OCI_LAYER]
    assert [x["digest"] for x in manifest["layers"]] == [sha256_bytes(t) for t in image.layer_tars]
    for layer, raw in zip(manifest["layers"], image.layer_tars, strict=True):
        assert other.content.read_bytes(Digest(layer["digest"])) == raw


def test_stream_destination(store: Store, image: BuiltImage, tmp_path: Path) -> None:
    out = io.BytesIO()
    write_docker_tar(store, image.desc, out, ["app:1"])
    path = tmp_path / "docker.tar"
    write_docker_tar(store, image.desc, path, ["app:1"])
    assert out.getvalue() == path.read_bytes()


def test_index_is_exported_as_its_platform_manifest(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    child = Descriptor(
        image.desc.media_type, image.desc.digest, image.desc.size, platform=Platform()
    )
    data = Index((child,)).to_bytes()
    index_desc = Descriptor(mt.OCI_INDEX, store.content.put_bytes(data), len(data))
    dest = tmp_path / "docker.tar"
    write_docker_tar(store, index_desc, dest, ["multi:1"])
    files = _members(dest)
    [entry] = json.loads(files["index.json"])["manifests"]
    assert entry["digest"] == image.desc.digest
    [item] = json.loads(files["manifest.json"])
    assert item["Config"] == f"blobs/sha256/{image.manifest.config.digest.hex}"
    assert f"blobs/sha256/{index_desc.digest.hex}" not in files
