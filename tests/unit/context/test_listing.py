"""walk_context and ContextListing: the shares joined are exactly select(root, "."), and a
path's listing fingerprint changes with anything below it, and only with that."""

from __future__ import annotations

import hashlib
import os
import struct
import time
from pathlib import Path

import pytest

from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.listing import ContextListing, share_of
from layerbuild.context.select import select, walk_context


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    for rel in ("a/x", "a/sub/y", "a-b/z", "b/.hidden", "c.txt", "keep/in", "keep/out.log"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / "a" / "link").symlink_to("x")
    (root / "dirlink").symlink_to("a")
    os.link(root / "c.txt", root / "a" / "c-again")
    return root


def _listing(root: Path, ignore: IgnoreRules | None = None, walkers: int = 2) -> ContextListing:
    taken = time.time_ns()
    shares = [share_of(taken, *walk_context(root, ignore, i, walkers)) for i in range(walkers)]
    return ContextListing.join(shares)


def _stat_key(st: os.stat_result) -> tuple[int, ...]:
    return (
        st.st_mode,
        st.st_ino,
        st.st_dev,
        st.st_nlink,
        st.st_uid,
        st.st_gid,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


@pytest.mark.parametrize("walkers", [1, 2, 3, 20])
@pytest.mark.parametrize("rules", ["", "**/*.log\nb\n", "keep\n!keep/in\n"])
def test_shares_joined_are_the_selection_of_the_root(
    tmp_path: Path, walkers: int, rules: str
) -> None:
    root = _tree(tmp_path)
    ignore = IgnoreRules.parse(rules) if rules else None
    expected = select(root, ".", ignore=ignore, excludes=())
    joined_paths: list[str] = []
    joined_stats: list[os.stat_result] = []
    for share in range(walkers):
        paths, stats = walk_context(root, ignore, share, walkers)
        joined_paths += paths
        joined_stats += stats
    assert joined_paths == [f.rel for f in expected]
    # every field but the access time, which reading a directory may move (relatime)
    assert [_stat_key(st) for st in joined_stats] == [_stat_key(f.st) for f in expected]
    listing = _listing(root, ignore, walkers)
    assert listing.paths == joined_paths


def test_fingerprint_follows_the_subtree_and_nothing_else(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    before = _listing(root)
    a, ab, whole = before.fingerprint("a"), before.fingerprint("a-b"), before.fingerprint("")
    assert a is not None and ab is not None and whole is not None
    assert len({a[0], ab[0], whole[0]}) == 3
    time.sleep(0.02)  # past a timestamp tick, so ctime moves
    (root / "a-b" / "z").write_text("Z")  # a sibling whose name starts like "a"
    after = _listing(root)
    assert after.fingerprint("a") == a
    assert after.fingerprint("a-b") != ab
    assert after.fingerprint("") != whole
    (root / "a" / "sub" / "y").chmod(0o600)
    assert _listing(root).fingerprint("a") != a


def test_bytes_changed_behind_a_restored_mtime_change_the_fingerprint(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    before = _listing(root).fingerprint("a/x")
    path = root / "a" / "x"
    st = path.stat()
    time.sleep(0.02)
    path.write_text("A/X")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = _listing(root).fingerprint("a/x")
    assert before is not None and after is not None
    assert after[0] != before[0] and after[1] > before[1]  # newer ctime too


def test_no_fingerprint_where_a_walk_of_its_own_is_needed(tmp_path: Path) -> None:
    """Symlinks (COPY follows the source's own), paths below one, hidden or absent paths."""
    root = _tree(tmp_path)
    listing = _listing(root, IgnoreRules.parse("b\n"))
    assert listing.fingerprint("dirlink") is None
    assert listing.fingerprint("dirlink/x") is None
    assert listing.fingerprint("a/link") is None
    assert listing.fingerprint("b") is None
    assert listing.fingerprint("nope") is None
    assert listing.fingerprint("c.txt") is not None


def test_a_truncated_share_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    paths, stats = walk_context(root, None, 0, 1)
    good = share_of(1, paths, stats)
    assert ContextListing.join([good]).paths == paths
    with pytest.raises(ValueError):
        ContextListing.join([share_of(1, paths[:-1], stats)])
    with pytest.raises(ValueError):  # the root must come first
        ContextListing.join([share_of(1, paths[1:], stats[1:])])


def test_the_whole_context_is_hashed_as_the_encoding_says(tmp_path: Path) -> None:
    """The root's fingerprint hashes the names as the walkers sent them, never decoded: the
    same bytes as the encoding of the decoded paths, odd names included."""
    root = _tree(tmp_path)
    (root / os.fsdecode(b"caf\xe9")).write_text("latin-1")
    listing = _listing(root, walkers=3)
    whole = listing.fingerprint("")
    assert whole is not None
    names = "\0".join(listing.paths).encode("utf-8", "surrogateescape")
    h = hashlib.sha256(b"layerbuild.listing.v1\n" + struct.pack("<I", 0))
    h.update(struct.pack("<I", len(listing.paths)) + names + listing.records)
    newest = max(st.st_ctime_ns for st in walk_context(root, None, 0, 1)[1])
    assert whole == (h.digest(), newest)
    assert os.fsdecode(b"caf\xe9") in listing.paths
