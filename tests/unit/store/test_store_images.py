from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import ImageFormatError, ImageNotFound, InvalidReference, StoreError
from layerbuild.image import mediatypes as mt
from layerbuild.image.annotations import Annotations
from layerbuild.image.config import ImageConfig
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Index, Layer
from layerbuild.store import Store, default_root
from layerbuild.store.images import read_image, resolve, tag, write_image
from tests.support.hostile_tars import Entry, compress, make_tar


def put_layer(store: Store, entries: list[Entry], compression: str = "gzip") -> Layer:
    tar = make_tar(entries)
    blob = compress(tar, compression)
    digest = store.content.put_bytes(blob)
    return Layer(sha256_bytes(tar), digest, len(blob), mt.layer_media_type(compression))


def make_image(store: Store, arch: str = "amd64", content: bytes = b"hi") -> Descriptor:
    layer = put_layer(store, [Entry("f", data=content)])
    config = ImageConfig(architecture=arch, diff_ids=(layer.diff_id,))
    return write_image(store, config, [layer])


def test_default_root(tmp_path: Path) -> None:
    assert default_root({"LAYERBUILD_ROOT": "/x"}) == Path("/x")
    assert default_root({"XDG_DATA_HOME": "/d"}) == Path("/d/layerbuild")
    assert default_root({}) == Path.home() / ".local/share/layerbuild"


def test_store_open_makes_an_oci_layout(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s")
    assert json.loads((store.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert json.loads((store.root / "index.json").read_text())["manifests"] == []
    for d in ("blobs/sha256", "ingest", "snapshots", "locks", "cache"):
        assert (store.root / d).is_dir()
    Store.open(store.root)  # reopening is fine


def test_store_open_refuses_foreign_layout(tmp_path: Path) -> None:
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "9"}')
    with pytest.raises(StoreError, match="oci-layout"):
        Store.open(tmp_path)


def test_write_read_roundtrip(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    desc = make_image(store)
    assert desc.media_type == mt.OCI_MANIFEST and desc.platform == Platform("amd64", "linux")
    got_desc, manifest, config = read_image(store, desc)
    assert got_desc == desc
    assert manifest.config.media_type == mt.OCI_CONFIG
    assert len(manifest.layers) == 1 and config.architecture == "amd64"


def test_write_image_checks_layers(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    layer = put_layer(store, [Entry("f")])
    with pytest.raises(ImageFormatError, match="diff_ids"):
        write_image(store, ImageConfig(), [layer])
    ghost = Layer(layer.diff_id, sha256_bytes(b"ghost"), 5, mt.OCI_LAYER)
    with pytest.raises(StoreError, match="not in the store"):
        write_image(store, ImageConfig(diff_ids=(layer.diff_id,)), [ghost])


def test_write_image_annotations(tmp_path: Path) -> None:
    """Manifest annotations go into the manifest, descriptor ones on its descriptor; index
    levels wrap it in a one-platform index, which reads back to the same manifest."""
    store = Store.open(tmp_path)
    layer = put_layer(store, [Entry("f")])
    config = ImageConfig(diff_ids=(layer.diff_id,))
    plain = write_image(store, config, [layer], Annotations(manifest=(("m", "1"),)))
    assert json.loads(store.content.read_bytes(plain.digest))["annotations"] == {"m": "1"}
    notes = Annotations(
        manifest=(("m", "1"),),
        manifest_descriptor=(("md", "2"),),
        index=(("i", "3"),),
        index_descriptor=(("id", "4"),),
    )
    top = write_image(store, config, [layer], notes)
    assert top.media_type == mt.OCI_INDEX and top.annotations == (("id", "4"),)
    index = Index.from_bytes(store.content.read_bytes(top.digest))
    assert index.annotations == (("i", "3"),)
    (entry,) = index.manifests
    assert entry.digest == plain.digest and entry.annotations == (("md", "2"),)
    assert entry.platform == Platform("amd64", "linux")
    assert read_image(store, top)[0] == entry


def _index(store: Store, *descs: Descriptor) -> Descriptor:
    data = Index(manifests=descs).to_bytes()
    return Descriptor(mt.OCI_INDEX, store.content.put_bytes(data), len(data))


def test_index_picks_platform(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    amd, arm = make_image(store, "amd64", b"a"), make_image(store, "arm64", b"b")
    unknown = Platform("unknown", "unknown")
    attestation = Descriptor(mt.OCI_MANIFEST, amd.digest, amd.size, platform=unknown)
    index = _index(store, arm, attestation, amd)
    assert read_image(store, index)[0].digest == amd.digest
    assert read_image(store, index, Platform.parse("linux/arm64"))[0].digest == arm.digest
    available = r"linux/s390x \(available: linux/arm64, linux/amd64\)"
    with pytest.raises(ImageNotFound, match=available):
        read_image(store, index, Platform.parse("linux/s390x"))
    only_arm = _index(store, arm)
    assert read_image(store, only_arm)[0].digest == arm.digest
    assert read_image(store, _index(store, only_arm))[0].digest == arm.digest  # nested


def test_resolve(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    desc = make_image(store)
    assert tag(store, "app", desc) == "app:latest"
    assert resolve(store, "app").digest == desc.digest
    assert resolve(store, "docker.io/library/app:latest").digest == desc.digest
    assert resolve(store, str(desc.digest)).digest == desc.digest
    assert resolve(store, f"app@{desc.digest}").digest == desc.digest
    assert resolve(store, desc.digest.hex[:12]).digest == desc.digest
    assert resolve(store, "sha256:" + desc.digest.hex[:20]).media_type == mt.OCI_MANIFEST
    for missing in ("nope", "app:2", desc.digest.hex[:11], "sha256:abc", str(sha256_bytes(b"z"))):
        with pytest.raises(ImageNotFound) as err:
            resolve(store, missing)
        assert err.value.hint and "layerbuild images" in err.value.hint
    with pytest.raises(InvalidReference):
        resolve(store, "Not Valid")


def test_resolve_refuses_non_image_blobs(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    desc = make_image(store)
    _, manifest, _ = read_image(store, desc)
    with pytest.raises(ImageNotFound, match="not an image"):
        resolve(store, str(manifest.config.digest))
    with pytest.raises(ImageNotFound):
        resolve(store, manifest.layers[0].digest.hex[:12])


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_reads_the_store(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    tag(store, "app:1", make_image(store))
    out = subprocess.run(
        ["skopeo", "inspect", f"oci:{store.root}:app:1"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Architecture"] == "amd64"
