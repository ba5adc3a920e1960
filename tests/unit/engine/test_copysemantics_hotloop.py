"""The written-out loop of a directory COPY (_Draft._put_below) gives the Changes that `put`
gives entry by entry: files, directories, symlinks, a FIFO, hard links, an entry over one of
an earlier source, into a new and into an existing directory, with and without --chown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerbuild.context.select import SourceFile
from layerbuild.engine import copysemantics
from layerbuild.engine.copysemantics import copy_changes
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tree import FileTree


def _entry_by_entry(self: copysemantics._Draft, prefix: str, entries: list[SourceFile]) -> None:
    for entry in entries:
        self.put(prefix + entry.rel, entry)


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "dir" / "sub" / "deep").mkdir(parents=True)
    (root / "dir" / "a").write_text("a")
    (root / "dir" / "sub" / "b").write_text("bb")
    (root / "dir" / "sub" / "deep" / "c").write_text("")
    os.link(root / "dir" / "sub" / "b", root / "dir" / "hard")
    os.symlink("sub/b", root / "dir" / "link")
    os.mkfifo(root / "dir" / "pipe")
    os.chmod(root / "dir" / "sub", 0o750)
    (root / "other").mkdir()
    (root / "other" / "a").write_text("over")
    return root


def _tree() -> FileTree:
    tree = FileTree()
    tree.apply([Change("srv", ChangeKind.DIR, mode=0o700, uid=5, mtime=9)])
    tree.apply([Change("srv/a", ChangeKind.FILE, size=1)])
    return tree


@pytest.mark.parametrize("dest", ["/new/", "/srv/", "/"])
@pytest.mark.parametrize("chown", [None, (7, 8)])
@pytest.mark.parametrize("preserve", [False, True])
def test_same_changes_as_put_entry_by_entry(
    ctx: Path, dest: str, chown: tuple[int, int] | None, preserve: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def copy() -> list[Change]:
        return copy_changes(
            ctx, ["dir", "other"], dest, workdir="/", tree=_tree(), ignore=None, excludes=(),
            chown=chown, chmod=None, mtime=None, now=42, preserve_owner=preserve,
        )

    fast = copy()
    monkeypatch.setattr(copysemantics._Draft, "_put_below", _entry_by_entry)
    slow = copy()
    assert [(c.path, c.kind) for c in fast] == [(c.path, c.kind) for c in slow]
    for a, b in zip(fast, slow, strict=True):
        assert (a.mode, a.uid, a.gid, a.size, a.mtime, a.link, a.xattrs) == (
            b.mode, b.uid, b.gid, b.size, b.mtime, b.link, b.xattrs
        )
        assert (a.content is None) == (b.content is None)
    kinds = {c.path.rsplit("/", 1)[-1]: c.kind for c in fast}
    assert kinds["hard"] is ChangeKind.FILE and kinds["b"] is ChangeKind.HARDLINK
    assert kinds["pipe"] is ChangeKind.FIFO and kinds["link"] is ChangeKind.SYMLINK
