"""OCI tarballs: deterministic bytes, layout members, streams, atomic files, round trips."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from layerbuild.errors import ExportError
from layerbuild.export.load import load
from layerbuild.export.oci_tar import write_oci_tar
from layerbuild.store.layout import Store
from tests.unit.export.export_images import BuiltImage


def test_tar_holds_the_layout_with_fixed_metadata(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "app.tar"
    write_oci_tar(store, image.desc, dest, ["app:1"])

    with tarfile.open(dest) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        blob_names = [f"blobs/sha256/{image.desc.digest.hex}"]
        blob_names.append(f"blobs/sha256/{image.manifest.config.digest.hex}")
        blob_names += [f"blobs/sha256/{layer.digest.hex}" for layer in image.manifest.layers]
        assert set(names) == {"blobs", "blobs/sha256", "index.json", "oci-layout", *blob_names}
        for m in members:
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
            assert m.isdir() if m.name in ("blobs", "blobs/sha256") else m.isfile()
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        layer = tar.extractfile(blob_names[-1])
        assert layer is not None
        assert layer.read() == store.content.read_bytes(image.manifest.layers[-1].digest)
    [entry] = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "1"
    assert entry["digest"] == image.desc.digest


def test_same_image_gives_the_same_bytes_to_a_file_and_a_stream(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    write_oci_tar(store, image.desc, tmp_path / "a.tar", ["app:1"])
    write_oci_tar(store, image.desc, tmp_path / "b.tar", ["app:1"])
    stream = io.BytesIO()
    write_oci_tar(store, image.desc, stream, ["app:1"])
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert stream.getvalue() == (tmp_path / "a.tar").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "b.tar", "store"]


def test_unwritable_destination_leaves_nothing(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    with pytest.raises(ExportError, match="cannot write"):
        write_oci_tar(store, image.desc, tmp_path / "missing-dir" / "app.tar", [])
    store.content.delete(image.manifest.layers[0].digest)
    with pytest.raises(ExportError, match=image.manifest.layers[0].digest):
        write_oci_tar(store, image.desc, tmp_path / "app.tar", [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_round_trip_keeps_the_manifest_digest(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "app.tar"
    write_oci_tar(store, image.desc, dest, ["registry.example/team/app:2"])
    other = Store.open(tmp_path / "other")
    assert load(other, dest) == [("registry.example/team/app:2", image.desc)]
    found = other.refs.get("registry.example/team/app:2")
    assert found is not None and found.digest == image.desc.digest


def test_gzip_compressed_tarball_loads(store: Store, image: BuiltImage, tmp_path: Path) -> None:
    plain = io.BytesIO()
    write_oci_tar(store, image.desc, plain, ["app:1"])
    packed = tmp_path / "app.tar.gz"
    packed.write_bytes(gzip.compress(plain.getvalue()))
    other = Store.open(tmp_path / "other")
    assert load(other, packed) == [("app:1", image.desc)]
