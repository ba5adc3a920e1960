"""overlay_changes over upper directories built by hand in overlayfs' format.

The same readings over upper dirs that a real overlay mount wrote are in
tests/integration/sandbox/test_changes.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from layerbuild.sandbox.overlaydiff import overlay_changes


def kinds(upper: Path, **kw: object) -> list[tuple[str, str]]:
    return [(c.kind.name, c.path) for c in overlay_changes(upper, **kw)]  # type: ignore[arg-type]


def test_whiteouts_opaques_and_entries(tmp_path: Path) -> None:
    up = tmp_path / "upper"
    (up / "etc").mkdir(parents=True)
    os.mknod(up / "etc" / "gone", 0o020000, os.makedev(0, 0))  # S_IFCHR 0/0
    (up / "etc" / "gone-too").write_bytes(b"")
    os.setxattr(up / "etc" / "gone-too", "user.overlay.whiteout", b"")
    (up / "opq").mkdir()
    os.setxattr(up / "opq", "user.overlay.opaque", b"y")
    (up / "opq" / "new").write_bytes(b"hello")
    os.symlink("/etc", up / "link")
    os.mkfifo(up / "fifo")
    assert kinds(up) == [
        ("DIR", "etc"),
        ("WHITEOUT", "etc/gone"),
        ("WHITEOUT", "etc/gone-too"),
        ("FIFO", "fifo"),
        ("SYMLINK", "link"),
        ("DIR", "opq"),
        ("OPAQUE", "opq"),
        ("FILE", "opq/new"),
    ]
    new = next(c for c in overlay_changes(up) if c.path == "opq/new")
    assert new.size == 5 and new.content is not None
    with new.content() as f:
        assert f.read() == b"hello"
    link = next(c for c in overlay_changes(up) if c.path == "link")
    assert link.link == "/etc"


def test_hard_links_first_occurrence_carries_the_data(tmp_path: Path) -> None:
    up = tmp_path / "upper"
    (up / "b").mkdir(parents=True)
    (up / "b" / "z").write_bytes(b"x")
    os.link(up / "b" / "z", up / "a")
    os.link(up / "b" / "z", up / "b" / "a")
    changes = list(overlay_changes(up))
    assert [(c.kind.name, c.path, c.link) for c in changes] == [
        ("FILE", "a", ""),
        ("DIR", "b", ""),
        ("HARDLINK", "b/a", "a"),
        ("HARDLINK", "b/z", "a"),
    ]


def test_overlay_xattrs_never_reach_a_change(tmp_path: Path) -> None:
    up = tmp_path / "upper"
    up.mkdir()
    f = up / "f"
    f.write_bytes(b"")
    os.setxattr(f, "user.overlay.origin", b"\x00\x01")
    os.setxattr(f, "user.mime", b"text/plain")
    (change,) = overlay_changes(up)
    assert change.xattrs == (("user.mime", b"text/plain"),)


def test_unchanged_copied_up_dirs_are_left_out_given_the_lowers(tmp_path: Path) -> None:
    lower, up = tmp_path / "lower", tmp_path / "upper"
    for root in (lower, up):
        (root / "etc").mkdir(parents=True)
        (root / "var").mkdir()
        os.utime(root / "etc", (1000, 1000))
        os.utime(root / "var", (1000, 1000))
    (up / "var" / "log").write_bytes(b"x")
    os.utime(up / "var", (1000, 1000))
    assert kinds(up) == [("DIR", "etc"), ("DIR", "var"), ("FILE", "var/log")]
    assert kinds(up, lowerdirs=[lower]) == [("DIR", "var"), ("FILE", "var/log")]
    os.chmod(up / "etc", 0o700)  # a chmod of the directory is a change
    assert ("DIR", "etc") in kinds(up, lowerdirs=[lower])
