"""FileTree: layer application rules, chroot-like symlink resolution, content layers, scale."""

from __future__ import annotations

import time

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import SymlinkLoopError
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tree import MAX_SYMLINKS, FileTree
from tests.support.random_layer import random_layer

L1, L2, L3 = (sha256_bytes(bytes([i])) for i in range(3))
K = ChangeKind


def d(path: str, mode: int = 0o755, **kw: int) -> Change:
    return Change(path, K.DIR, mode, **kw)


def f(path: str, size: int = 1, **kw: int) -> Change:
    return Change(path, K.FILE, size=size, **kw)


def s(path: str, link: str) -> Change:
    return Change(path, K.SYMLINK, 0o777, link=link)


def base() -> FileTree:
    tree = FileTree()
    tree.apply(
        [
            d("etc"),
            f("etc/passwd"),
            d("usr"),
            d("usr/bin"),
            f("usr/bin/sh"),
            d("usr/lib"),
            f("usr/lib/x"),
            d("usr/lib/deep"),
            f("usr/lib/deep/y"),
        ],
        L1,
    )
    return tree


def paths(tree: FileTree) -> list[str]:
    return [c.path for c in tree.walk()]


def test_walk_is_parents_first_in_name_order() -> None:
    tree = base()
    assert paths(tree) == [
        "etc",
        "etc/passwd",
        "usr",
        "usr/bin",
        "usr/bin/sh",
        "usr/lib",
        "usr/lib/deep",
        "usr/lib/deep/y",
        "usr/lib/x",
    ]
    assert len(tree) == 9


def test_whiteout_deletes_a_subtree_and_acts_only_on_lower_layers() -> None:
    tree = base()
    tree.apply(
        [Change("usr/lib", K.WHITEOUT), Change("etc/passwd", K.WHITEOUT), f("etc/passwd", size=9)],
        L2,
    )
    assert "usr/lib/x" not in paths(tree) and tree.lookup("usr/lib/deep/y") is None
    passwd = tree.lookup("/etc/passwd")
    assert passwd is not None and passwd.size == 9
    assert tree.content_ref("etc/passwd") == (L2, "etc/passwd")


def test_opaque_hides_lower_children_but_keeps_this_layers() -> None:
    tree = base()
    tree.apply([d("usr/lib", 0o700), Change("usr/lib", K.OPAQUE), f("usr/lib/new")], L2)
    assert [c.path for c in tree.walk("usr/lib")] == ["usr/lib/new"]
    lib = tree.lookup("usr/lib")
    assert lib is not None and lib.mode == 0o700


def test_file_over_dir_replaces_it_and_dir_over_dir_keeps_children() -> None:
    tree = base()
    tree.apply([f("usr/lib"), d("etc", 0o700, uid=5)], L2)
    lib = tree.lookup("usr/lib")
    assert lib is not None and lib.kind is K.FILE and tree.lookup("usr/lib/x") is None
    etc = tree.lookup("etc")
    assert etc is not None and etc.uid == 5 and tree.lookup("etc/passwd") is not None


def test_missing_parents_are_created_and_non_dirs_in_the_way_replaced() -> None:
    tree = base()
    tree.apply([f("etc/passwd/oops"), f("new/a/b")], L2)
    parent = tree.lookup("etc/passwd")
    assert parent is not None and parent.is_dir
    assert [p for p in paths(tree) if p.startswith("new")] == ["new", "new/a", "new/a/b"]


def test_symlinks_resolve_inside_the_root_like_a_chroot() -> None:
    tree = base()
    tree.apply(
        [
            s("bin", "usr/bin"),
            s("usr/bin/abs", "/etc/passwd"),
            s("usr/bin/up", "../../../../etc"),
            s("usr/bin/rel", "../lib/x"),
            s("dangling", "/nowhere/at/all"),
        ],
        L2,
    )
    assert tree.resolve("/bin/sh") == "usr/bin/sh"
    assert tree.resolve("bin/abs") == "etc/passwd"
    assert tree.resolve("bin/up/passwd") == "etc/passwd"  # '..' clamps at the root
    assert tree.resolve("/bin/rel") == "usr/lib/x"
    assert tree.resolve("dangling/more") == "nowhere/at/all/more"  # missing tail kept
    assert tree.resolve("usr/../../etc/./passwd") == "etc/passwd"
    sh = tree.lookup("/bin/sh")
    assert sh is not None and sh.path == "usr/bin/sh"
    link = tree.lookup_nofollow("bin/abs")
    assert link is not None and link.kind is K.SYMLINK
    assert tree.lookup_nofollow("bin") is not None and tree.lookup("dangling") is None
    assert tree.content_ref("/bin/rel") == (L1, "usr/lib/x")


def test_symlink_loops_end_in_none_or_an_error() -> None:
    tree = FileTree()
    tree.apply([s("a", "b"), s("b", "a"), s("self", "./self/x")])
    assert tree.lookup("a") is None
    with pytest.raises(SymlinkLoopError, match="too many levels"):
        tree.resolve("self")
    chain = [s(f"l{i}", f"l{i + 1}") for i in range(MAX_SYMLINKS)] + [f(f"l{MAX_SYMLINKS}")]
    tree.apply(chain)
    assert tree.lookup("l0") is not None  # exactly 40 hops is allowed
    tree.apply([s("lx", "l0")])
    assert tree.lookup("lx") is None  # 41 is a loop


def test_hard_links_become_files_with_their_targets_data_layer() -> None:
    tree = base()
    tree.apply([Change("usr/bin/sh2", K.HARDLINK, link="usr/bin/sh")], L2)
    linked = tree.lookup("usr/bin/sh2")
    assert linked is not None and linked.kind is K.FILE
    assert tree.content_ref("usr/bin/sh2") == (L1, "usr/bin/sh")
    assert tree.content_ref("etc") is None and tree.content_ref("nope") is None


def test_hard_link_before_its_data_in_the_same_layer() -> None:
    """Older layerbuild layers put Debian's usr/bin/gunzip (a link) before its target."""
    tree = base()
    tree.apply(
        [
            Change("usr/bin/gunzip", K.HARDLINK, link="usr/bin/uncompress"),
            f("usr/bin/uncompress", size=7),
        ],
        L2,
    )
    linked = tree.lookup("usr/bin/gunzip")
    assert linked is not None and (linked.kind, linked.size) == (K.FILE, 7)
    assert tree.content_ref("usr/bin/gunzip") == (L2, "usr/bin/uncompress")


def test_copy_is_independent() -> None:
    tree = base()
    other = tree.copy()
    other.apply([Change("usr", K.WHITEOUT)], L2)
    assert tree.lookup("usr/bin/sh") is not None and other.lookup("usr/bin/sh") is None


def test_random_layers_apply_consistently() -> None:
    tree = FileTree()
    for seed in range(3):
        tree.apply(random_layer(seed, big_files=0), sha256_bytes(b"%d" % seed))
    for change in tree.walk():
        assert tree.lookup_nofollow(change.path) == change
        parent = tree.lookup_nofollow(change.parent)
        assert parent is not None and parent.is_dir


def test_100k_entries_are_fast() -> None:
    changes = [d(f"d{i}") for i in range(100)]
    changes += [f(f"d{i % 100}/f{i}") for i in range(100_000)]
    tree = FileTree()
    start = time.perf_counter()
    tree.apply(changes, L1)
    for i in range(0, 100_000, 7):
        assert tree.lookup(f"/d{i % 100}/f{i}") is not None
    assert sum(1 for _ in tree.walk()) == 100_100
    tree.apply([Change(f"d{i}", K.WHITEOUT) for i in range(100)], L2)
    assert len(tree) == 0
    assert time.perf_counter() - start < 5
