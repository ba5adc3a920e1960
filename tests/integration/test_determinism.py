"""Reproducible builds: SOURCE_DATE_EPOCH makes the image a function of the inputs only."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from tests.support.cli import Layerbuild, OciImage, make_context, run_tool, tree, unpack

pytestmark = pytest.mark.tools

EPOCH = 1_700_000_000
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKERFILE = """\
FROM busybox
WORKDIR /srv
COPY . /srv/app/
COPY <<EOF /srv/generated.txt
made at build time
EOF
ADD bundle.tar.gz /opt/
LABEL x=y
"""


def _bundle() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("pkg/data")
        info.size, info.mtime = 4, EPOCH + 500
        tar.addfile(info, io.BytesIO(b"data"))
    return gzip.compress(buf.getvalue(), mtime=0)


FILES: dict[str, str | bytes] = {
    "Dockerfile": DOCKERFILE,
    "a.txt": "a\n",
    "dir/b.txt": "b\n",
    "dir/sub/c.bin": bytes(range(256)) * 64,
    "bundle.tar.gz": _bundle(),
}


def _context(tmp_path: Path, name: str, mtime: int, reverse: bool) -> Path:
    """A copy of FILES whose every entry has `mtime`, written in forward or reverse order
    (so directory listing order differs between the copies)."""
    items = sorted(FILES.items(), reverse=reverse)
    ctx = make_context(tmp_path, dict(items), name)
    for dirpath, dirnames, filenames in os.walk(ctx, topdown=False):
        for entry in filenames + dirnames:
            os.utime(Path(dirpath, entry), (mtime, mtime))
    os.utime(ctx, (mtime, mtime))
    return ctx


NewStore = Callable[[str], Layerbuild]


def _build(
    new_store: NewStore, tmp_path: Path, i: int, mtime: int, *args: str, **kw: Any
) -> tuple[Path, str]:
    """Build FILES (copy i, all mtimes `mtime`) in store i; (OCI tarball, image digest)."""
    lb = new_store(f"store{i}")
    ctx = _context(tmp_path, f"ctx{i}", mtime, reverse=i % 2 == 1)
    out = lb.build_oci(ctx, *args, **kw)
    return out, lb.inspect("test:1")["Digest"]


def _new_layers(out: Path) -> list[bytes]:
    img = OciImage(out)
    return [img.blob(d["digest"]) for d in img.manifest()["layers"][1:]]


def test_epoch_from_env_gives_identical_images(new_store: NewStore, tmp_path: Path) -> None:
    """SOURCE_DATE_EPOCH in the environment: two context copies with different mtimes (both
    after the epoch), built in two stores, give the same digest and byte-identical layers,
    with mtimes clamped to the epoch and `created` set to it."""
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    out1, d1 = _build(new_store, tmp_path, 0, EPOCH + 10, env=env)
    out2, d2 = _build(new_store, tmp_path, 1, EPOCH + 99_999, env=env)
    assert d1 == d2
    assert _new_layers(out1) == _new_layers(out2)
    img = OciImage(out1)
    assert img.config()["created"] == "2023-11-14T22:13:20Z"
    assert all(h["created"] == "2023-11-14T22:13:20Z" for h in img.config()["history"][1:])
    for n in range(1, len(img.manifest()["layers"])):
        assert all(m.mtime <= EPOCH for m in img.layer_members(n))


def test_epoch_from_build_arg_matches_env(new_store: NewStore, tmp_path: Path) -> None:
    """--build-arg SOURCE_DATE_EPOCH=N gives the same image as the environment variable."""
    _, by_env = _build(new_store, tmp_path, 0, EPOCH + 10, env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    _, by_arg = _build(
        new_store, tmp_path, 1, EPOCH + 77, "--build-arg", f"SOURCE_DATE_EPOCH={EPOCH}"
    )
    assert by_env == by_arg


def test_without_epoch_mtimes_reach_the_layers(new_store: NewStore, tmp_path: Path) -> None:
    """Control: without SOURCE_DATE_EPOCH, context mtimes are kept, so the layers differ."""
    out1, _ = _build(new_store, tmp_path, 0, EPOCH + 10)
    out2, _ = _build(new_store, tmp_path, 1, EPOCH + 99_999)
    assert _new_layers(out1)[1] != _new_layers(out2)[1]  # the COPY . layer
    members = {m.name: m for m in OciImage(out2).layer_members(2)}
    assert members["srv/app/a.txt"].mtime == EPOCH + 99_999


def test_zstd_layers_are_read_by_skopeo_and_umoci(new_store: NewStore, tmp_path: Path) -> None:
    """--compression zstd writes tar+zstd layers (deterministic too); skopeo lists the media
    type and umoci unpacks the same tree as the gzip build."""
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    zout, z1 = _build(new_store, tmp_path, 0, EPOCH + 1, "--compression", "zstd", env=env)
    _, z2 = _build(new_store, tmp_path, 1, EPOCH + 2, "--compression", "zstd", env=env)
    gout, _ = _build(new_store, tmp_path, 2, EPOCH + 3, env=env)
    assert z1 == z2
    layers = OciImage(zout).manifest()["layers"]
    assert {x["mediaType"] for x in layers[1:]} == {ZSTD}
    assert _new_layers(zout)[0].startswith(b"\x28\xb5\x2f\xfd")  # zstd frame magic
    ref = f"oci-archive:{zout}:1"
    info = json.loads(run_tool("skopeo", "inspect", ref))
    assert info["Layers"] == [x["digest"] for x in layers]
    raw = json.loads(run_tool("skopeo", "inspect", "--raw", ref))
    assert [x["mediaType"] for x in raw["layers"][1:]] == [ZSTD] * (len(layers) - 1)
    diff_ids = OciImage(zout).config()["rootfs"]["diff_ids"]
    for layer, diff_id in zip(_new_layers(zout), diff_ids[1:], strict=True):
        plain = zstandard.ZstdDecompressor().decompressobj().decompress(layer)
        assert "sha256:" + hashlib.sha256(plain).hexdigest() == diff_id
    # umoci 0.4.7 refuses zstd media types ("blob is not correct mediatype"), so skopeo
    # decompresses our zstd layers into a gzip layout that umoci then unpacks
    converted = tmp_path / "converted"
    run_tool(
        "skopeo",
        "copy",
        "--dest-compress",
        "--dest-compress-format",
        "gzip",
        ref,
        f"oci:{converted}:1",
    )
    assert tree(unpack(converted, "1")) == tree(unpack(gout, "1"))
