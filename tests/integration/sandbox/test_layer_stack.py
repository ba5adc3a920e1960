"""Per-layer snapshots stacked as overlay lowerdirs show the same tree as applying the layers."""

from __future__ import annotations

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.image import mediatypes as mt
from layerbuild.image.manifest import Layer
from tests.integration.sandbox.conftest import Sandbox
from tests.support.hostile_tars import Entry, compress, make_tar

pytestmark = [pytest.mark.root, pytest.mark.overlay]


def _layer(sandbox: Sandbox, entries: list[Entry]) -> Layer:
    tar = make_tar(entries)
    blob = compress(tar, "gzip")
    digest = sandbox.busybox.store.content.put_bytes(blob)
    return Layer(sha256_bytes(tar), digest, len(blob), mt.layer_media_type("gzip"))


@pytest.mark.parametrize("limit", [500, 2])
def test_stacked_layers_apply_whiteouts_and_opaques(sandbox: Sandbox, limit: int) -> None:
    box = sandbox.busybox
    extra = [
        _layer(
            sandbox, [Entry("etc", "dir"), Entry("etc/a", data=b"a"), Entry("etc/b", data=b"b")]
        ),
        _layer(sandbox, [Entry("etc/.wh.a"), Entry("bin", "dir"), Entry("bin/x", data=b"x")]),
        _layer(
            sandbox, [Entry("opt", "dir"), Entry("opt/.wh..wh..opq"), Entry("opt/c", data=b"c")]
        ),
    ]
    layers = [*box.layers, *extra]
    lowers = tuple(box.snapshots.lowerdirs(box.store, layers, limit=limit))
    assert len(lowers) == min(len(layers), limit)
    r = sandbox.run(
        "ls /etc; cat /bin/x; echo; ls /opt; test -e /bin/ls && echo ls", lowerdirs=lowers
    )
    etc = ["b", "group", "hostname", "hosts", "passwd", "resolv.conf"]  # a: whited out
    assert r.text.split() == [*etc, "x", "c", "ls"]
    merged = box.store.snapshots.rootfs(box.store, [x.descriptor for x in layers])
    assert sorted(p.name for p in (merged / "etc").iterdir()) == ["b", "group", "passwd"]
    assert r.changes == []
