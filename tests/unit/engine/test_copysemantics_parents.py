"""COPY --parents: each match keeps its path below the root, or below a `/./` pivot."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerbuild.engine.copysemantics import copy_changes
from layerbuild.image.changes import ChangeKind
from layerbuild.image.tree import FileTree


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for rel, text in {"x/a/f.txt": "1", "x/b/f.txt": "2", "y/g.txt": "3", "top.txt": "4"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def _files(root: Path, sources: list[str], dest: str, parents: bool = True) -> set[str]:
    changes = copy_changes(
        root,
        sources,
        dest,
        workdir="/",
        tree=FileTree(),
        ignore=None,
        excludes=(),
        chown=None,
        chmod=None,
        mtime=None,
        now=0,
        parents=parents,
    )
    return {c.path for c in changes if c.kind is ChangeKind.FILE}


def test_glob_matches_keep_their_directories(root: Path) -> None:
    assert _files(root, ["x/*/f.txt", "top.txt"], "/p/") == {
        "p/x/a/f.txt",
        "p/x/b/f.txt",
        "p/top.txt",
    }


def test_a_directory_keeps_its_own_name(root: Path) -> None:
    assert _files(root, ["y"], "/r/") == {"r/y/g.txt"}


def test_the_pivot_cuts_the_kept_path(root: Path) -> None:
    assert _files(root, ["./x/./a/"], "/q/") == {"q/a/f.txt"}
    assert _files(root, ["x/./*/f.txt"], "/q") == {"q/a/f.txt", "q/b/f.txt"}


def test_without_parents_the_paths_flatten(root: Path) -> None:
    """The control: the same glob without --parents puts both files on one name."""
    assert _files(root, ["y", "top.txt"], "/r/", parents=False) == {"r/g.txt", "r/top.txt"}
