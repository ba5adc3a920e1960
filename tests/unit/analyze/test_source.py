"""from_path: an OCI layout's image read in place (nested index, platform), and the archives
that hold several images refused with what to do instead."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from layerbuild.analyze.source import from_path
from layerbuild.errors import ImageFormatError
from layerbuild.image.changes import ChangeKind
from layerbuild.image.descriptor import Platform

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _blob(root: Path, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data), **extra}


def _layer(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _image(root: Path, files: dict[str, bytes], arch: str = "amd64") -> dict[str, Any]:
    tar = _layer(files)
    layer = _blob(root, gzip.compress(tar), "application/vnd.oci.image.layer.v1.tar+gzip")
    config = {
        "architecture": arch,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
        "history": [{"created_by": "COPY x /"}],
    }
    config_desc = _blob(
        root, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"
    )
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc,
                "layers": [layer]}  # fmt: skip
    platform = {"architecture": arch, "os": "linux"}
    return _blob(root, json.dumps(manifest).encode(), MANIFEST, platform=platform)


def _index(root: Path, entries: list[dict[str, Any]]) -> None:
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}
    (root / "index.json").write_text(json.dumps(index))


def test_a_multi_platform_layout_gives_the_asked_platforms_image(tmp_path: Path) -> None:
    amd = _image(tmp_path, {"amd": b"x" * 5}, "amd64")
    arm = _image(tmp_path, {"arm": b"y" * 7}, "arm64")
    nested = _blob(tmp_path, json.dumps({"schemaVersion": 2, "manifests": [amd, arm]}).encode(),
                   INDEX, annotations={"org.opencontainers.image.ref.name": "1"})  # fmt: skip
    _index(tmp_path, [nested])
    image = from_path(tmp_path, Platform(architecture="arm64", os="linux"))
    assert [(c.path, c.kind, c.size) for c in image.entries[0]] == [("arm", ChangeKind.FILE, 7)]
    assert image.config.history[0].created_by == "COPY x /"
    assert from_path(tmp_path).entries[0][0].path == "amd"  # linux/amd64 by default


def test_a_layout_of_several_images_is_refused(tmp_path: Path) -> None:
    one = _image(tmp_path, {"a": b"1"})
    two = _image(tmp_path, {"b": b"2"})
    one["annotations"] = {"org.opencontainers.image.ref.name": "one"}
    two["annotations"] = {"org.opencontainers.image.ref.name": "two"}
    _index(tmp_path, [one, two])
    with pytest.raises(ImageFormatError, match=r"several images \(one, two\)") as e:
        from_path(tmp_path)
    assert e.value.hint is not None and "layerbuild load" in e.value.hint


def test_a_directory_that_is_no_image_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageFormatError, match="not an OCI image layout or a docker-archive"):
        from_path(tmp_path)
