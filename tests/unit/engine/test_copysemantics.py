from __future__ import annotations

import os
import socket
import stat
import struct
from collections.abc import Iterable
from pathlib import Path

import pytest

from layerbuild.context.ignore import IgnoreRules
from layerbuild.engine.copysemantics import copy_changes
from layerbuild.errors import BuildError, ContextError
from layerbuild.image.changes import Change, ChangeKind

EPOCH = 1_600_000_000
IS_ROOT = os.geteuid() == 0


class FakeImage:
    """Test double of the parent image (the real one is image/tree.py's FileTree)."""

    def __init__(self, changes: Iterable[Change] = ()) -> None:
        self.nodes = {c.path: c for c in changes}

    def resolve(self, path: str) -> str:
        pending = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        while pending:
            part = pending.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            node = self.nodes.get("/".join([*done, part]))
            if node is not None and node.kind is ChangeKind.SYMLINK:
                if node.link.startswith("/"):
                    done = []
                pending = [p for p in node.link.split("/") if p not in ("", ".")] + pending
                continue
            done.append(part)
        return "/".join(done)

    def lookup(self, path: str) -> Change | None:
        return self.nodes.get(self.resolve(path))


def _dir(path: str, mode: int = 0o755, uid: int = 0) -> Change:
    return Change(path, ChangeKind.DIR, mode=mode, uid=uid, gid=uid, mtime=111)


BASE = FakeImage(
    [
        _dir("usr"),
        _dir("usr/local", uid=7),
        _dir("usr/local/bin", mode=0o775),
        Change("etc", ChangeKind.DIR, mode=0o755),
        Change("etc/passwd", ChangeKind.FILE, size=3),
        _dir("srv"),
        _dir("srv/app", mode=0o700),
        Change("app", ChangeKind.SYMLINK, mode=0o777, link="/srv/app"),
        Change("usr/lib64", ChangeKind.SYMLINK, mode=0o777, link="lib"),
    ]
)


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "b.txt").write_text("beta")
    (root / "dir" / "one").write_text("1")
    (root / "dir" / "sub" / "two").write_text("22")
    os.chmod(root / "dir" / "sub", 0o750)
    os.chmod(root / "a.txt", 0o640)
    for path in [root, *root.rglob("*")]:
        os.utime(path, (EPOCH, EPOCH), follow_symlinks=False)
    return root


def _copy(root: Path, sources: list[str], dest: str, **kw: object) -> dict[str, Change]:
    args: dict[str, object] = {
        "workdir": "/",
        "tree": BASE,
        "ignore": None,
        "excludes": (),
        "chown": None,
        "chmod": None,
        "mtime": None,
        "now": 42,
    }
    args.update(kw)
    changes = copy_changes(root, sources, dest, **args)  # type: ignore[arg-type]
    paths = [c.path for c in changes]
    assert len(paths) == len(set(paths))
    return {c.path: c for c in changes}


def _read(change: Change) -> bytes:
    assert change.content is not None
    with change.content() as f:
        return f.read()


def test_file_to_new_name(ctx: Path) -> None:
    out = _copy(ctx, ["a.txt"], "/opt/x")
    assert list(out) == ["opt", "opt/x"]
    x = out["opt/x"]
    assert (x.kind, x.mode, x.uid, x.gid, x.size, x.mtime) == (
        ChangeKind.FILE,
        0o640,
        0,
        0,
        5,
        EPOCH,
    )
    assert _read(x) == b"alpha"
    assert (out["opt"].mode, out["opt"].mtime) == (0o755, 42)


def test_file_into_existing_dir_keeps_ancestor_metadata(ctx: Path) -> None:
    out = _copy(ctx, ["a.txt"], "/usr/local/bin")
    assert list(out) == ["usr", "usr/local", "usr/local/bin", "usr/local/bin/a.txt"]
    assert out["usr/local"].uid == 7
    assert out["usr/local/bin"].mode == 0o775
    assert out["usr/local/bin"].mtime == 111


def test_trailing_slash_makes_a_directory(ctx: Path) -> None:
    out = _copy(ctx, ["a.txt"], "/new/")
    assert out["new"].kind is ChangeKind.DIR
    assert "new/a.txt" in out


def test_relative_dest_joins_workdir(ctx: Path) -> None:
    out = _copy(ctx, ["a.txt"], "x/", workdir="/work/dir")
    assert "work/dir/x/a.txt" in out
    out = _copy(ctx, ["a.txt"], ".", workdir="/w")
    assert "w/a.txt" in out


def test_dest_symlink_resolved_in_image(ctx: Path) -> None:
    out = _copy(ctx, ["a.txt"], "/app/")
    assert "srv/app/a.txt" in out
    assert out["srv/app"].mode == 0o700  # the image's dir, untouched
    assert "app" not in out


def test_directory_copies_contents(ctx: Path) -> None:
    out = _copy(ctx, ["dir"], "/dst")
    assert list(out) == ["dst", "dst/one", "dst/sub", "dst/sub/two"]
    assert out["dst"].mode == 0o755 and out["dst"].mtime == 42  # created, not copied
    assert out["dst/sub"].mode == 0o750 and out["dst/sub"].mtime == EPOCH
    assert _read(out["dst/sub/two"]) == b"22"


def test_directory_into_existing_dir_keeps_its_metadata(ctx: Path) -> None:
    out = _copy(ctx, ["dir"], "/srv/app")
    assert out["srv/app"].mode == 0o700
    assert "srv/app/sub/two" in out


def test_several_sources_need_a_directory(ctx: Path) -> None:
    with pytest.raises(BuildError, match="must be a directory and end with a /"):
        _copy(ctx, ["a.txt", "b.txt"], "/dst")
    with pytest.raises(BuildError, match="must be a directory"):
        _copy(ctx, ["*.txt"], "/dst")
    out = _copy(ctx, ["*.txt"], "/dst/")
    assert {"dst/a.txt", "dst/b.txt"} <= set(out)
    out = _copy(ctx, ["a.txt", "b.txt"], "/usr/local/bin")  # an existing dir is fine
    assert "usr/local/bin/b.txt" in out


def test_single_dir_source_without_slash_is_fine(ctx: Path) -> None:
    assert "d/one" in _copy(ctx, ["dir"], "d")


def test_chown_applies_to_copied_and_created(ctx: Path) -> None:
    out = _copy(ctx, ["dir"], "/usr/local/new/", chown=(1000, 1001))
    assert (out["usr/local/new"].uid, out["usr/local/new"].gid) == (1000, 1001)
    assert (out["usr/local/new/sub/two"].uid, out["usr/local/new/sub/two"].gid) == (1000, 1001)
    assert out["usr/local"].uid == 7  # existing parents keep their owner


@pytest.mark.skipif(not IS_ROOT, reason="chown to another uid needs root")
def test_owner_reset_for_context_kept_for_from(ctx: Path) -> None:
    os.chown(ctx / "a.txt", 1234, 5678)
    assert _copy(ctx, ["a.txt"], "/x")["x"].uid == 0
    kept = _copy(ctx, ["a.txt"], "/x", preserve_owner=True)["x"]
    assert (kept.uid, kept.gid) == (1234, 5678)
    assert _copy(ctx, ["a.txt"], "/x", preserve_owner=True, chown=(1, 2))["x"].uid == 1


def test_chmod_octal_and_symbolic(ctx: Path) -> None:
    os.symlink("a.txt", ctx / "dir" / "link")
    out = _copy(ctx, ["dir"], "/d", chmod="0700")
    assert out["d/one"].mode == 0o700
    assert out["d/sub"].mode == 0o700
    assert out["d/link"].mode == 0o777  # symlinks have no mode of their own
    out = _copy(ctx, ["dir"], "/d", chmod="u+x,g-r,o=")
    assert out["d/one"].mode == 0o744 & ~0o040 & ~0o007 | 0o100
    assert out["d/sub"].mode == 0o710
    assert _copy(ctx, ["a.txt"], "/x", chmod=0o4755)["x"].mode == 0o4755


def test_mtime_override(ctx: Path) -> None:
    out = _copy(ctx, ["dir"], "/d", mtime=5)
    assert {c.mtime for c in out.values()} == {5}


def test_setuid_and_sticky_kept(ctx: Path) -> None:
    os.chmod(ctx / "a.txt", 0o4755)
    os.chmod(ctx / "dir" / "sub", 0o1777)
    assert _copy(ctx, ["a.txt"], "/x")["x"].mode == 0o4755
    assert _copy(ctx, ["dir"], "/d")["d/sub"].mode == 0o1777


def test_hard_links_become_one_file_and_links(ctx: Path) -> None:
    os.link(ctx / "dir" / "sub" / "two", ctx / "dir" / "again")
    out = _copy(ctx, ["dir"], "/d")
    assert out["d/again"].kind is ChangeKind.FILE  # first in layer order carries the data
    link = out["d/sub/two"]
    assert (link.kind, link.link, link.content) == (ChangeKind.HARDLINK, "d/again", None)


def test_hard_link_target_overwritten_by_later_source(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "a").write_text("old")
    os.link(tmp_path / "one" / "a", tmp_path / "one" / "b")
    (tmp_path / "two" / "a").write_text("new")
    out = _copy(tmp_path, ["one", "two"], "/d/")
    assert out["d/a"].kind is ChangeKind.FILE and _read(out["d/a"]) == b"new"
    assert out["d/b"].kind is ChangeKind.FILE and _read(out["d/b"]) == b"old"


def test_symlinks_copied_verbatim_never_followed(tmp_path: Path, ctx: Path) -> None:
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", ctx / "dir" / "abs")
    os.symlink("../../secret", ctx / "dir" / "rel")
    os.symlink("/etc/shadow", ctx / "dir" / "etc")
    out = _copy(ctx, ["dir"], "/d")
    assert out["d/abs"].kind is ChangeKind.SYMLINK
    assert out["d/abs"].link == str(tmp_path / "secret")
    assert out["d/rel"].link == "../../secret"
    assert out["d/etc"].link == "/etc/shadow"
    assert all(c.content is None for c in out.values() if c.kind is ChangeKind.SYMLINK)


def test_source_symlink_followed_inside_context(ctx: Path) -> None:
    os.symlink("dir/one", ctx / "alias")
    out = _copy(ctx, ["alias"], "/d/")
    assert out["d/alias"].kind is ChangeKind.FILE
    assert _read(out["d/alias"]) == b"1"


def test_fifo_copied_socket_skipped(ctx: Path) -> None:
    os.mkfifo(ctx / "dir" / "pipe", 0o600)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(ctx / "dir" / "sock"))
        out = _copy(ctx, ["dir"], "/d")
    finally:
        sock.close()
    assert (out["d/pipe"].kind, out["d/pipe"].mode) == (ChangeKind.FIFO, 0o600)
    assert "d/sock" not in out


@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="mknod needs root")
def test_device_copied(ctx: Path) -> None:
    os.mknod(ctx / "dir" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    dev = _copy(ctx, ["dir"], "/d")["d/null"]
    assert (dev.kind, dev.devmajor, dev.devminor) == (ChangeKind.CHARDEV, 1, 3)


@pytest.mark.skipif(not IS_ROOT, reason="setting file capabilities needs CAP_SETFCAP")
def test_capability_xattr_kept(ctx: Path) -> None:
    cap = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)  # cap_net_bind_service, +ep
    os.setxattr(ctx / "a.txt", "security.capability", cap)
    assert _copy(ctx, ["a.txt"], "/x")["x"].xattrs == (("security.capability", cap),)
    assert _copy(ctx, ["b.txt"], "/x")["x"].xattrs == ()


def test_content_guard_against_growth_shrink_and_swap(ctx: Path) -> None:
    out = _copy(ctx, ["a.txt", "b.txt"], "/d/")
    (ctx / "a.txt").write_text("alpha and more")
    with pytest.raises(ContextError, match="grew"):
        _read(out["d/a.txt"])
    (ctx / "a.txt").write_text("al")
    with pytest.raises(ContextError, match="shrank"):
        _read(out["d/a.txt"])
    os.replace(ctx / "dir" / "one", ctx / "b.txt")
    with pytest.raises(ContextError, match="replaced"):
        _read(out["d/b.txt"])


def test_inline_heredoc_files(ctx: Path) -> None:
    out = _copy(ctx, [], "/etc/app/", inline=[("conf", b"k=v\n")], mtime=9)
    conf = out["etc/app/conf"]
    assert (conf.mode, conf.size, conf.mtime) == (0o644, 4, 9)
    assert _read(conf) == b"k=v\n"
    out = _copy(ctx, [], "/run.sh", inline=[("EOF", b"#!/bin/sh\n")], chmod="755")
    assert out["run.sh"].mode == 0o755


def test_link_ignores_the_image(ctx: Path) -> None:
    out = _copy(ctx, ["a.txt"], "/usr/local/bin", link=True)
    assert out["usr/local/bin"].kind is ChangeKind.FILE
    assert out["usr/local"].uid == 0 and out["usr/local"].mtime == 42


def test_file_over_image_directory_refused(ctx: Path) -> None:
    with pytest.raises(BuildError, match="exists in the image as a file"):
        _copy(ctx, ["dir"], "/etc/passwd")
    with pytest.raises(BuildError, match="exists in the image as a file"):
        _copy(ctx, ["a.txt"], "/etc/passwd/x")


def test_directory_over_image_symlink_refused(tmp_path: Path) -> None:
    (tmp_path / "lib64").mkdir()
    (tmp_path / "lib64" / "ld.so").write_text("x")
    with pytest.raises(BuildError, match="cannot copy to non-directory"):
        _copy(tmp_path, ["."], "/usr/")


def test_file_replaces_image_file(ctx: Path) -> None:
    out = _copy(ctx, ["a.txt"], "/etc/passwd")
    assert out["etc/passwd"].size == 5
    assert out["etc"].kind is ChangeKind.DIR


def test_later_source_wins(tmp_path: Path) -> None:
    for name, text in (("one", "first"), ("two", "second")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(text)
    out = _copy(tmp_path, ["one", "two"], "/d/")
    assert _read(out["d/f"]) == b"second"


def test_dockerignore_and_exclude_respected(ctx: Path) -> None:
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    rules = IgnoreRules.parse("Dockerfile\n*.txt\n")
    out = _copy(ctx, ["."], "/app/", ignore=rules, excludes=["dir/sub"])
    assert "srv/app/Dockerfile" not in out and "srv/app/a.txt" not in out
    assert "srv/app/dir/one" in out and "srv/app/dir/sub" not in out


def test_unicode_names(tmp_path: Path) -> None:
    (tmp_path / "données").mkdir()
    (tmp_path / "données" / "名前.txt").write_text("n")
    assert "d/données/名前.txt" in _copy(tmp_path, ["."], "/d")


def test_missing_source_names_it(ctx: Path) -> None:
    with pytest.raises(ContextError, match="stat missing.txt"):
        _copy(ctx, ["missing.txt"], "/x")


def test_output_in_layer_order(ctx: Path) -> None:
    changes = copy_changes(
        ctx,
        ["dir", "a.txt"],
        "/z/",
        workdir="/",
        tree=BASE,
        ignore=None,
        excludes=(),
        chown=None,
        chmod=None,
        mtime=None,
        now=1,
    )
    assert [c.path for c in changes] == ["z", "z/a.txt", "z/one", "z/sub", "z/sub/two"]
