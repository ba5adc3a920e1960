"""filediff: per-aspect comparison, ordering (biggest first, mtime-only last), a layer's own
entries (whiteouts, opaque markers) and a root filesystem with whiteouts and hard links."""

from __future__ import annotations

import io

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.filediff import (
    ADDED,
    CHANGED,
    MTIME_ONLY,
    REMOVED,
    FileState,
    aspects,
    compare,
    layer_states,
    rootfs_states,
)
from layerbuild.image.layerfiles import EMPTY, LayerFiles, read_layer_files
from layerbuild.image.tarwriter import write_tar

K = ChangeKind
L1, L2 = sha256_bytes(b"1"), sha256_bytes(b"2")


def files(*entries: Change, digests: dict[str, Digest] | None = None) -> LayerFiles:
    return LayerFiles(tuple(entries), digests or {})


def test_each_aspect_is_named() -> None:
    base = FileState("file", 0o644, 0, 0, 3, 10, digest=sha256_bytes(b"abc"))
    cases = {
        "content": FileState("file", 0o644, 0, 0, 3, 10, digest=sha256_bytes(b"abd")),
        "mode": FileState("file", 0o755, 0, 0, 3, 10, digest=base.digest),
        "owner": FileState("file", 0o644, 1000, 0, 3, 10, digest=base.digest),
        "xattrs": FileState(
            "file", 0o644, 0, 0, 3, 10, xattrs=(("user.a", b"1"),), digest=base.digest
        ),
        "mtime": FileState("file", 0o644, 0, 0, 3, 11, digest=base.digest),
        "type": FileState("symlink", 0o644, 0, 0, 3, 10, link="x"),
    }
    for name, other in cases.items():
        assert aspects(base, other) == (name,), name
    link_a = FileState("symlink", 0o777, link="/a")
    assert aspects(link_a, FileState("symlink", 0o777, link="/b")) == ("link",)


def test_order_is_biggest_first_and_mtime_only_last() -> None:
    a = {
        "/small": FileState("file", size=1, digest=L1),
        "/big": FileState("file", size=100, digest=L1),
        "/gone": FileState("file", size=50),
        "/touched": FileState("file", size=1000, mtime=1),
    }
    b = {
        "/small": FileState("file", size=1, digest=L2),
        "/big": FileState("file", size=100, digest=L2),
        "/new": FileState("file", size=70),
        "/touched": FileState("file", size=1000, mtime=2),
    }
    got = [(c.path, c.status) for c in compare(a, b)]
    assert got == [
        ("/big", CHANGED),
        ("/new", ADDED),
        ("/gone", REMOVED),
        ("/small", CHANGED),
        ("/touched", MTIME_ONLY),
    ]
    assert compare(a, a) == []


def test_a_layer_keeps_whiteouts_and_opaque_markers_as_entries() -> None:
    layer = files(
        Change("d", K.DIR, 0o755),
        Change("d", K.OPAQUE, 0),
        Change("old", K.WHITEOUT, 0),
    )
    states = layer_states(layer)
    assert set(states) == {"/d", "/d/.wh..wh..opq", "/old"}
    assert states["/old"].kind == "whiteout"
    (change,) = compare(layer_states(files(Change("d", K.DIR, 0o755))), states)[:1]
    assert change.status == ADDED


def test_rootfs_applies_whiteouts_and_resolves_hard_links_to_their_data() -> None:
    lower = files(
        Change("etc", K.DIR, 0o755),
        Change("etc/a", K.FILE, size=1),
        Change("etc/b", K.FILE, size=2),
        digests={"etc/a": L1, "etc/b": L2},
    )
    upper = files(Change("etc/a", K.WHITEOUT, 0), Change("etc/c", K.HARDLINK, link="etc/b"))
    tree = rootfs_states([(L1, lower), (L2, upper)])
    assert set(tree) == {"/etc", "/etc/b", "/etc/c"}
    assert tree["/etc/c"].kind == "file"
    assert tree["/etc/c"].digest == L2  # the data the link names, in the lower layer


def test_read_layer_files_hashes_every_file_as_it_streams() -> None:
    out = io.BytesIO()
    write_tar(
        [
            Change("a", K.FILE, size=5, content=lambda: io.BytesIO(b"hello")),
            Change("empty", K.FILE, size=0),
            Change("l", K.SYMLINK, 0o777, link="a"),
        ],
        out,
    )
    out.seek(0)
    got = read_layer_files(out)
    assert got.digests == {"a": sha256_bytes(b"hello"), "empty": EMPTY}
    assert [c.path for c in got.entries] == ["a", "empty", "l"]
    assert all(c.content is None for c in got.entries)
