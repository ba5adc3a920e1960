"""engine/filesteps.workdir_dirs: the layer of a WORKDIR, resolved through the image's links."""

from __future__ import annotations

import pytest

from layerbuild.engine.filesteps import workdir_dirs
from layerbuild.errors import BuildError, SymlinkLoopError
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tree import FileTree


def _tree(*changes: Change) -> FileTree:
    tree = FileTree()
    tree.apply(changes)
    return tree


def _link(path: str, target: str) -> Change:
    return Change(path, ChangeKind.SYMLINK, 0o777, link=target)


def _dir(path: str, uid: int = 0) -> Change:
    return Change(path, ChangeKind.DIR, 0o700, uid, uid)


def test_a_dangling_link_gets_its_target_made_and_stays() -> None:
    tree = _tree(_dir("var", uid=7), _link("tempest", "/var/lib/tempest"))
    changes = workdir_dirs(tree, "tempest", 1, 2, mtime=5)
    assert [(c.path, c.mode, c.uid, c.gid) for c in changes] == [
        ("var", 0o700, 7, 7),  # an existing ancestor comes with its own metadata
        ("var/lib", 0o755, 1, 2),
        ("var/lib/tempest", 0o755, 1, 2),
    ]
    assert all(c.mtime == 5 for c in changes[1:])


def test_relative_links_and_dotdot_stop_at_the_root() -> None:
    tree = _tree(_dir("srv"), _link("srv/app", "../../../opt/app"))
    changes = workdir_dirs(tree, "srv/app/sub", 0, 0, mtime=0)
    assert [c.path for c in changes] == ["opt", "opt/app", "opt/app/sub"]


def test_a_file_on_the_way_is_an_error() -> None:
    tree = _tree(
        _dir("etc"), Change("etc/passwd", ChangeKind.FILE, 0o644), _link("c", "etc/passwd")
    )
    with pytest.raises(BuildError, match="/etc/passwd is a file"):
        workdir_dirs(tree, "c/x", 0, 0, mtime=0)


def test_a_loop_is_an_error() -> None:
    tree = _tree(_link("a", "b"), _link("b", "/a"))
    with pytest.raises(SymlinkLoopError, match="too many levels"):
        workdir_dirs(tree, "a/x", 0, 0, mtime=0)
