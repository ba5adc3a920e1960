"""imagediff: the whole comparison of two images from their layers' files, and its JSON."""

from __future__ import annotations

import json

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.config import History, ImageConfig
from layerbuild.image.imagediff import ImageSide, diff_images, to_json
from layerbuild.image.layerfiles import LayerFiles
from layerbuild.image.manifest import Layer
from layerbuild.image.mediatypes import OCI_LAYER_GZIP

K = ChangeKind
BASE = LayerFiles((Change("bin", K.DIR, 0o755), Change("bin/sh", K.FILE, 0o755, size=9)),
                  {"bin/sh": sha256_bytes(b"sh")})  # fmt: skip


def side(name: str, *layers: LayerFiles) -> tuple[ImageSide, dict[Digest, LayerFiles]]:
    ids = [sha256_bytes(repr(files).encode()) for files in layers]
    history = tuple(History(f"step {i}") for i in range(len(layers)))
    config = ImageConfig(diff_ids=tuple(ids), history=history)
    descs = tuple(Layer(i, i, 1, OCI_LAYER_GZIP) for i in ids)
    return ImageSide(name, config.digest, config, descs), dict(zip(ids, layers, strict=True))


def test_identical_images_need_no_files() -> None:
    a, _ = side("a", BASE)
    result = diff_images(a, a, {})
    assert result.identical and result.files == () and not result.config
    assert [p.pair.verdict for p in result.layers] == ["same"]


def test_a_stamp_file_then_a_hidden_one() -> None:
    stamp = {"stamp": sha256_bytes(b"1")}
    a, fa = side("a", BASE, LayerFiles((Change("stamp", K.FILE, size=2, mtime=5),), stamp))
    b, fb = side(
        "b",
        BASE,
        LayerFiles(
            (Change("stamp", K.FILE, size=2, mtime=5), Change("bin/sh", K.WHITEOUT, 0)),
            {"stamp": sha256_bytes(b"2")},
        ),
    )
    result = diff_images(a, b, fa | fb)
    assert not result.identical
    top = result.layers[1]
    assert top.pair.verdict == "not reproducible"
    assert [(c.path, c.status, c.what) for c in top.files] == [
        ("/stamp", "changed", ("content",)),
        ("/bin/sh", "added", ()),  # the whiteout, an entry of the layer
    ]
    assert [(c.path, c.status) for c in result.files] == [
        ("/bin/sh", "removed"),
        ("/stamp", "changed"),
    ]
    out = json.loads(json.dumps(to_json(result)))
    assert out["identical"] is False
    assert out["layers"][1]["b"]["step"] == 2
    assert out["files"][1]["b"]["digest"] == str(sha256_bytes(b"2"))
