"""FileSource.chunks: the tar writer's fast read path keeps every guard of the file object."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerbuild.context.filesource import FileSource
from layerbuild.errors import ContextError


def _source(path: Path) -> FileSource:
    return FileSource(path, os.lstat(path))


@pytest.mark.parametrize("size", [1, 7, 8, 9, 16, 17])
def test_yields_exactly_the_selected_bytes_in_pieces(tmp_path: Path, size: int) -> None:
    f = tmp_path / "a"
    data = bytes(range(size))
    f.write_bytes(data)
    pieces = list(_source(f).chunks(8))
    assert b"".join(pieces) == data
    assert all(0 < len(p) <= 8 for p in pieces)


@pytest.mark.parametrize("size", [5, 8, 16])  # below, at and at a multiple of the piece size
def test_refuses_growth(tmp_path: Path, size: int) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"x" * size)
    source = _source(f)
    f.write_bytes(b"x" * (size + 1))
    with pytest.raises(ContextError, match="grew"):
        list(source.chunks(8))


def test_refuses_shrinking_swap_and_symlink(tmp_path: Path) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"x" * 20)
    source = _source(f)
    f.write_bytes(b"x" * 19)
    with pytest.raises(ContextError, match="shrank"):
        list(source.chunks(8))
    other = tmp_path / "other"
    other.write_bytes(b"x" * 20)
    other.replace(f)  # a new inode under the old name (created while the old one lives)
    with pytest.raises(ContextError, match="replaced"):
        list(source.chunks(8))
    target = tmp_path / "t"
    target.write_bytes(b"x" * 20)
    f.unlink()
    f.symlink_to(target)
    with pytest.raises(ContextError, match="cannot open"):
        list(source.chunks(8))


def test_closes_the_file_when_abandoned(tmp_path: Path) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"x" * 64)
    before = len(os.listdir("/proc/self/fd"))
    pieces = _source(f).chunks(8)
    next(pieces)
    pieces.close()
    assert len(os.listdir("/proc/self/fd")) == before
