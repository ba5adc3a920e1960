"""read_in_root: a file named inside a root, links resolved as fs.RootPath does, never outside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerbuild.context.rootpath import read_in_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "outside.txt").write_text("host file")
    ctx = tmp_path / "ctx"
    (ctx / "sub" / "deep").mkdir(parents=True)
    (ctx / "in.txt").write_text("inside")
    (ctx / "sub" / "deep" / "f.txt").write_text("deep file")
    (ctx / "outside.txt").write_text("the root's own outside.txt")
    return ctx


def test_plain_file_and_absent(root: Path) -> None:
    assert read_in_root(root, "in.txt") == b"inside"
    assert read_in_root(root, "sub/deep/f.txt") == b"deep file"
    assert read_in_root(root, "missing") is None
    assert read_in_root(root, "in.txt/below") is None  # through a file: absent, not an error


def test_link_to_a_file_inside_is_followed(root: Path) -> None:
    os.symlink("in.txt", root / "rel")
    os.symlink("/in.txt", root / "abs")
    os.symlink("deep/f.txt", root / "sub" / "link")
    assert read_in_root(root, "rel") == b"inside"
    assert read_in_root(root, "abs") == b"inside"  # absolute: against the root
    assert read_in_root(root, "sub/link") == b"deep file"  # relative to the link's dir


def test_absolute_link_out_reads_the_same_path_inside(root: Path, tmp_path: Path) -> None:
    """ctx/x -> /<tmp>/outside.txt names ctx/<tmp>/outside.txt, which does not exist."""
    os.symlink(tmp_path / "outside.txt", root / "x")
    os.symlink("/etc/passwd", root / "passwd")
    assert read_in_root(root, "x") is None
    assert read_in_root(root, "passwd") is None


def test_dotdot_link_stops_at_the_root(root: Path) -> None:
    """ctx/up -> ../outside.txt names ctx/outside.txt, never the file beside the root."""
    os.symlink("../outside.txt", root / "up")
    os.symlink("../../../../../outside.txt", root / "sub" / "far")
    assert read_in_root(root, "up") == b"the root's own outside.txt"
    assert read_in_root(root, "sub/far") == b"the root's own outside.txt"


def test_parent_directory_link_is_resolved_inside(root: Path, tmp_path: Path) -> None:
    """ctx/etc -> /etc: etc/passwd is looked up as ctx/etc/passwd, absent here."""
    os.symlink("/etc", root / "etc")
    os.symlink(str(tmp_path), root / "up")
    os.symlink("sub/deep", root / "d")
    assert read_in_root(root, "etc/passwd") is None
    assert read_in_root(root, "up/outside.txt") is None
    assert read_in_root(root, "d/f.txt") == b"deep file"


def test_not_a_regular_file_and_loops_are_absent(root: Path) -> None:
    os.mkfifo(root / "fifo")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    os.symlink("nowhere", root / "dangling")
    assert read_in_root(root, "sub") is None
    assert read_in_root(root, "fifo") is None  # and does not block
    assert read_in_root(root, "loop1") is None
    assert read_in_root(root, "dangling") is None


def test_root_reached_through_a_link_is_the_callers_choice(root: Path, tmp_path: Path) -> None:
    os.symlink(root, tmp_path / "ctx-link")
    assert read_in_root(tmp_path / "ctx-link", "in.txt") == b"inside"
