"""plan_units and walk_units: the units' shares, joined in unit order, are byte for byte the
share that select.walk_context and share_of make of the same tree (so listing fingerprints do
not change), however the walk is cut and dealt; and what the walk does with entries that
vanish, odd names and a context that is not there."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.listing import ContextListing, share_of
from layerbuild.context.listwalk import _depth, plan_units, walk_units
from layerbuild.context.select import walk_context
from layerbuild.errors import ContextError


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    for rel in ("a/x", "a/sub/y", "a-b/z", "b/.hidden", "c.txt", "keep/in", "keep/out.log"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / "a" / "link").symlink_to("x")
    (root / "dirlink").symlink_to("a")  # listed as a link, never walked
    (root / "empty").mkdir()
    os.link(root / "c.txt", root / "a" / "c-again")
    return root


def _reference(root: Path, ignore: IgnoreRules | None) -> ContextListing:
    return ContextListing.join([share_of(7, *walk_context(root, ignore, 0, 1))])


def _walked(
    root: Path, ignore: IgnoreRules | None, walkers: int = 1, wanted: int = 32
) -> ContextListing:
    """The listing as the prefetch puts it together: each walker's units, back in order."""
    units = plan_units(str(root), ignore, wanted)
    dealt = [walk_units(str(root), ignore, units, w, walkers, 7) for w in range(walkers)]
    assert sum(map(len, dealt)) == len(units)
    return ContextListing.join([dealt[u % walkers][u // walkers] for u in range(len(units))])


@pytest.mark.parametrize("walkers", [1, 2, 3, 20])
@pytest.mark.parametrize("wanted", [1, 4, 32])
@pytest.mark.parametrize("rules", ["", "**/*.log\nb\n", "keep\n!keep/in\n", "a\n!a/sub\n"])
def test_the_units_join_into_the_listing_select_walks(
    tmp_path: Path, walkers: int, wanted: int, rules: str
) -> None:
    root = _tree(tmp_path)
    ignore = IgnoreRules.parse(rules) if rules else None
    assert _walked(root, ignore, walkers, wanted) == _reference(root, ignore)


def test_a_root_with_few_entries_is_cut_below_its_directories(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    ignore = IgnoreRules.parse("keep\n!keep/in\n")
    units = plan_units(str(root), ignore, wanted=32)
    assert units[:6] == [
        ("", "", False),
        ("", "a", False),  # a directory no pattern matches: alone, then its entries
        ("a", "c-again", True),
        ("a", "link", True),
        ("a", "sub", True),
        ("a", "x", True),
    ]
    assert ("", "dirlink", True) in units  # a link to a directory is not cut
    assert ("", "keep", True) in units  # matched by a pattern: whole
    assert ("", "c.txt", True) in units
    assert plan_units(str(root), ignore, wanted=3) == [
        ("", "", False), *(("", name, True) for name in sorted(os.listdir(root)))
    ]


_NAMES = ("a", "b", "a-b", "keep", "x.log", "node_modules", "sub")
_RULES = (
    "*.log",
    "**/*.log",
    "a",
    "a/**",
    "**/sub",
    "keep",
    "!keep/x.log",
    "!**/keep",
    "sub/",
    "!a/sub",
    "[ab]",
    "!b/*/x.log",
    "**/node_modules",
    "!node_modules/a",
    "a-?",
    "*/sub/*",
    "*/*/x.log",  # fixed depths: tried only at their own depth
    "a/sub/x.log",
    "!*/keep/x.log",
    "keep/*",
    "x.lo[g]",  # a class: tried at every depth
    "a\\-b",
)


def _random_tree(root: Path, rng: random.Random, depth: int = 0) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name in rng.sample(_NAMES, rng.randint(1, 4)):
        if depth < 3 and rng.random() < 0.5:
            _random_tree(root / name, rng, depth + 1)
        else:
            (root / name).write_text(name)


@pytest.mark.parametrize("seed", range(80))
def test_dockerignore_rules_leave_what_select_leaves(tmp_path: Path, seed: int) -> None:
    """Random trees and rule sets (exceptions inside excluded directories, `**`, trailing
    globs): the rules handed down a directory at a time exclude what `matches` excludes."""
    rng = random.Random(seed)
    root = tmp_path / "ctx"
    _random_tree(root, rng)
    ignore = IgnoreRules.parse("\n".join(rng.sample(_RULES, rng.randint(1, 5))))
    for walkers, wanted in ((1, 32), (2, 32), (2, 1), (3, 100)):
        assert _walked(root, ignore, walkers, wanted) == _reference(root, ignore), ignore.patterns


def test_names_that_are_not_utf8_travel_as_select_sees_them(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    (root / "d").mkdir(parents=True)
    (root / os.fsdecode(b"d/caf\xe9")).write_text("latin-1")
    listing = _walked(root, None, 2)
    assert listing == _reference(root, None)
    assert listing.paths == ["", "d", os.fsdecode(b"d/caf\xe9")]


def test_an_entry_removed_after_its_directory_was_read_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    listdir = os.listdir

    def with_a_ghost(fd: int) -> list[str]:
        return [*listdir(fd), "ghost"]  # listed, then gone before its lstat

    monkeypatch.setattr(os, "listdir", with_a_ghost)
    listing = _walked(root, None, 2)
    monkeypatch.undo()
    assert listing == _reference(root, None)


def test_a_context_that_is_not_there_or_not_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="does not exist"):
        plan_units(str(tmp_path / "nope"), None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ContextError, match="cannot list"):
        plan_units(str(tmp_path / "file"), None)
    units = plan_units(str(tmp_path), None)
    (tmp_path / "file").unlink()  # gone between the plan and the walk: left out
    assert "file" not in _walked(tmp_path, None).paths
    os.rmdir(tmp_path)
    with pytest.raises(ContextError, match="does not exist"):
        walk_units(str(tmp_path), None, units, 0, 1, 7)


@pytest.mark.parametrize(
    ("text", "depth"),
    [(".git", 1), ("a/b", 2), ("*.log", 1), ("*/x?", 2), ("**/x", None), ("a/**", None),
     ("a/**/b", None), ("x[/]y", None), ("a\\*", None)],
)  # fmt: skip
def test_the_depth_a_pattern_can_match_at(text: str, depth: int | None) -> None:
    assert _depth(IgnoreRules.parse(text).patterns[0]) == depth
