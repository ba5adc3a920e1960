"""wasted_paths (biggest first, siblings hidden alike folded into `dir/*`) and dir_shares."""

from __future__ import annotations

from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.waste import HiddenBy, HiddenFile, analyze_waste
from layerbuild.image.wastepaths import WastedPath, dir_shares, wasted_paths

K = ChangeKind


def f(path: str, size: int) -> Change:
    return Change(path, K.FILE, size=size)


def wh(path: str) -> Change:
    return Change(path, K.WHITEOUT, 0)


def test_paths_are_summed_by_what_the_hiding_layer_named_biggest_first() -> None:
    hidden = [
        HiddenFile("cache/a", 5, 1, 2, "cache", HiddenBy.DELETED),
        HiddenFile("cache/b", 7, 1, 2, "cache", HiddenBy.DELETED),
        HiddenFile("big", 100, 1, 3, "big", HiddenBy.DELETED),
    ]
    assert wasted_paths(hidden) == [
        WastedPath("big", 100, 1, 1, 3, HiddenBy.DELETED),
        WastedPath("cache", 12, 2, 1, 2, HiddenBy.DELETED),
    ]


def test_siblings_deleted_one_by_one_fold_into_their_directory() -> None:
    # `rm -rf /var/lib/apt/lists/*` whites out each entry of the directory
    lists = "var/lib/apt/lists"
    layers = [
        [f(f"{lists}/a_Packages", 300), f(f"{lists}/b_Packages", 200), f(f"{lists}/lock", 0)],
        [wh(f"{lists}/a_Packages"), wh(f"{lists}/b_Packages"), wh(f"{lists}/lock")],
    ]
    paths = wasted_paths(analyze_waste(layers).hidden)
    assert paths == [WastedPath(f"{lists}/*", 500, 2, 0, 1, HiddenBy.DELETED)]


def test_siblings_hidden_by_different_layers_stay_apart() -> None:
    layers = [[f("a/x", 3), f("a/y", 4)], [wh("a/x")], [wh("a/y")]]
    assert [p.path for p in wasted_paths(analyze_waste(layers).hidden)] == ["a/y", "a/x"]


def test_directory_shares_add_up_and_keep_the_biggest() -> None:
    layers = [
        [f("usr/bin/a", 100), f("usr/lib/b", 50), f("etc/c", 1)],
        [f("usr/lib/b", 60)],
        [wh("usr/lib/b")],
    ]
    root = dir_shares(layers, analyze_waste(layers).hidden, depth=2, width=1)
    assert (root.path, root.shipped, root.wasted) == ("", 211, 110)
    (usr,) = root.children  # width 1: etc (1 byte) is left out
    assert (usr.path, usr.shipped, usr.wasted) == ("usr", 210, 110)
    (lib,) = usr.children
    assert (lib.path, lib.shipped, lib.wasted, lib.children) == ("usr/lib", 110, 110, ())
