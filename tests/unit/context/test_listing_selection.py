"""ContextListing.selection: what select(root, path) returns, made from the listing; where the
listing cannot say (a symlink, a device, a path not listed) it declines, and a walk is made."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.listing import ContextListing, share_of
from layerbuild.context.lstat import Lstat
from layerbuild.context.select import SourceFile, select, walk_context


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    for rel in ("a/x", "a/sub/y", "a-b/z", "b/.hidden", "c.txt", "keep/in", "keep/out.log"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / "a" / "link").symlink_to("x")
    (root / "dirlink").symlink_to("a")
    os.link(root / "c.txt", root / "a" / "c-again")
    os.link(root / "a" / "x", root / "a" / "sub" / "x-again")
    os.mkfifo(root / "b" / "pipe")
    return root


def _listing(root: Path, ignore: IgnoreRules | None = None) -> ContextListing:
    taken = time.time_ns()
    shares = [share_of(taken, *walk_context(root, ignore, i, 2)) for i in (0, 1)]
    return ContextListing.join(shares)


def _view(files: list[SourceFile]) -> list[tuple[object, ...]]:
    """Everything a COPY reads of a selection; of st_nlink, only whether it is above 1 for a
    file another entry of the selection shares its inode with."""
    inodes = [(f.st.st_dev, f.st.st_ino) for f in files if stat.S_ISREG(f.st.st_mode)]
    shared = {i for i in inodes if inodes.count(i) > 1}

    def linked(f: SourceFile) -> bool:
        return stat.S_ISREG(f.st.st_mode) and (f.st.st_dev, f.st.st_ino) in shared

    return [
        (f.rel, f.real, f.source, tuple(f.st)[:3], tuple(f.st)[4:9], f.st.st_rdev, linked(f))
        for f in files
    ]


RULES = IgnoreRules.from_patterns(["keep", "!keep/in", "*.txt"])


@pytest.mark.parametrize("ignore", [None, RULES])
@pytest.mark.parametrize("path", ["", "a", "a/sub", "c.txt", "keep", "b/pipe"])
def test_the_selection_of_a_listed_path_is_select_s(
    tmp_path: Path, path: str, ignore: IgnoreRules | None
) -> None:
    root = _tree(tmp_path)
    listing = _listing(root, ignore)
    if listing.fingerprint(path) is None:  # hidden by the rules: no listing, no selection
        assert listing.selection(os.path.realpath(root), path) is None
        return
    made = listing.selection(os.path.realpath(root), path)
    assert made is not None
    expected = select(root, path or ".", ignore=ignore, excludes=())
    assert _view(made) == _view(expected)
    assert all(isinstance(f.st, Lstat) for f in made)


def test_hard_links_within_the_selection_are_marked_and_no_other_file(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    made = _listing(root).selection(os.path.realpath(root), "a")
    assert made is not None
    nlinks = {f.rel: f.st.st_nlink for f in made if stat.S_ISREG(f.st.st_mode)}
    # c-again's other name is outside "a": no pair to fold, as with its real count of 2
    assert nlinks == {"x": 2, "sub/x-again": 2, "sub/y": 1, "c-again": 1}


def test_declines_where_a_walk_is_needed(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    listing = _listing(root)
    real = os.path.realpath(root)
    assert listing.selection(real, "dirlink") is None  # a symlink: COPY follows it
    assert listing.selection(real, "dirlink/x") is None  # reached through one: not listed
    assert listing.selection(real, "nothing") is None
    if os.geteuid() == 0:
        os.mknod(root / "b" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        again = _listing(root)
        assert again.selection(real, "b") is None  # no device numbers in a listing
        assert again.selection(real, "a") is not None
