"""walk_share: byte for byte the share that select.walk_context and share_of make of the same
tree (so listing fingerprints do not change), and what it does with entries that vanish, odd
names and a context that is not there."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.listing import ContextListing, Share, share_of
from layerbuild.context.listwalk import walk_share
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


def _reference(root: Path, ignore: IgnoreRules | None, part: int, parts: int) -> Share:
    return share_of(7, *walk_context(root, ignore, part, parts))


@pytest.mark.parametrize("walkers", [1, 2, 3, 20])
@pytest.mark.parametrize("rules", ["", "**/*.log\nb\n", "keep\n!keep/in\n"])
def test_a_share_is_the_one_select_walks(tmp_path: Path, walkers: int, rules: str) -> None:
    root = _tree(tmp_path)
    ignore = IgnoreRules.parse(rules) if rules else None
    for part in range(walkers):
        share = walk_share(str(root), ignore, part, walkers, 7)
        assert share == _reference(root, ignore, part, walkers)


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
)


def _random_tree(root: Path, rng: random.Random, depth: int = 0) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name in rng.sample(_NAMES, rng.randint(1, 4)):
        if depth < 3 and rng.random() < 0.5:
            _random_tree(root / name, rng, depth + 1)
        else:
            (root / name).write_text(name)


@pytest.mark.parametrize("seed", range(40))
def test_dockerignore_rules_leave_what_select_leaves(tmp_path: Path, seed: int) -> None:
    """Random trees and rule sets (exceptions inside excluded directories, `**`, trailing
    globs): the rules handed down a directory at a time exclude what `matches` excludes."""
    rng = random.Random(seed)
    root = tmp_path / "ctx"
    _random_tree(root, rng)
    ignore = IgnoreRules.parse("\n".join(rng.sample(_RULES, rng.randint(1, 5))))
    for walkers in (1, 2):
        for part in range(walkers):
            share = walk_share(str(root), ignore, part, walkers, 7)
            assert share == _reference(root, ignore, part, walkers), ignore.patterns


def test_names_that_are_not_utf8_travel_as_select_sees_them(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    (root / "d").mkdir(parents=True)
    (root / os.fsdecode(b"d/caf\xe9")).write_text("latin-1")
    share = walk_share(str(root), None, 0, 1, 7)
    assert share == _reference(root, None, 0, 1)
    assert ContextListing.join([share]).paths == ["", "d", os.fsdecode(b"d/caf\xe9")]


def test_an_entry_removed_after_its_directory_was_read_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    listdir = os.listdir

    def with_a_ghost(fd: int) -> list[str]:
        return [*listdir(fd), "ghost"]  # listed, then gone before its lstat

    monkeypatch.setattr(os, "listdir", with_a_ghost)
    share = walk_share(str(root), None, 0, 1, 7)
    monkeypatch.undo()
    assert share == _reference(root, None, 0, 1)


def test_a_context_that_is_not_there_or_not_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="does not exist"):
        walk_share(str(tmp_path / "nope"), None, 0, 1, 7)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ContextError, match="cannot list"):
        walk_share(str(tmp_path / "file"), None, 0, 1, 7)
