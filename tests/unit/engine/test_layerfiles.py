"""engine/layerfiles: the bounded summary of what a built layer wrote and removed."""

from __future__ import annotations

from layerbuild.engine.layerfiles import FIRST_PATHS, parent_lookup, summarize
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tree import FileTree


def _file(path: str, size: int) -> Change:
    return Change(path, ChangeKind.FILE, size=size)


def test_without_a_parent_tree_only_written_and_removed_are_known() -> None:
    changes = [
        Change("app", ChangeKind.DIR),
        _file("app/a", 10),
        _file("app/b", 5),
        Change("old", ChangeKind.WHITEOUT),
    ]
    files = summarize(changes)
    assert (files.written, files.removed, files.bytes) == (3, 1, 15)
    assert files.added is None and files.changed is None
    assert files.paths == ("* /app", "* /app/a", "* /app/b", "- /old")
    assert str(files) == "3 written, 1 removed, 15 bytes"


def test_a_loaded_tree_and_its_pending_changes_tell_added_from_changed() -> None:
    tree = FileTree()
    tree.apply([Change("etc", ChangeKind.DIR), _file("etc/passwd", 3)])
    pending = [[_file("etc/group", 2), Change("etc/gone", ChangeKind.WHITEOUT)]]
    existed = parent_lookup((tree, pending))
    assert existed is not None
    files = summarize([_file("etc/passwd", 4), _file("etc/group", 1), _file("etc/gone", 7)],
                      existed)
    assert (files.added, files.changed, files.written) == (1, 2, 3)
    assert files.paths == ("~ /etc/passwd", "~ /etc/group", "+ /etc/gone")
    assert parent_lookup(None) is None


def test_paths_are_bounded_and_counts_are_not() -> None:
    files = summarize([_file(f"f{i:03}", 1) for i in range(FIRST_PATHS + 30)])
    assert len(files.paths) == FIRST_PATHS
    assert files.written == FIRST_PATHS + 30 and files.bytes == FIRST_PATHS + 30
    assert files.to_json()["paths"] == list(files.paths)


def test_below_a_missing_directory_nothing_existed_but_what_is_pending() -> None:
    tree = FileTree()
    tree.apply([Change("usr", ChangeKind.DIR), Change("lib", ChangeKind.SYMLINK, link="usr")])
    tree.apply([_file("usr/x", 1)])
    pending = [[_file("new/deep/kept", 1)]]  # pending, though its parents are not
    existed = parent_lookup((tree, pending))
    assert existed is not None
    asked = ["new", "new/deep", "new/deep/file", "new/deep/kept", "lib", "lib/x", "lib/y"]
    assert [existed(p) for p in asked] == [False, False, False, True, True, True, False]
    # the same answers when the children are asked first (nothing memoized wrongly)
    again = parent_lookup((tree, pending))
    assert again is not None
    assert [again(p) for p in reversed(asked)] == [False, True, True, True, False, False, False]
