"""FileSource (a context file opened at pack time) and hash_file/hash_files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from layerbuild.context.filesource import FileSource, hash_file, hash_files
from layerbuild.errors import ContextError


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _source(path: Path) -> FileSource:
    return FileSource(path, os.lstat(path))


def test_reads_exactly_the_selected_bytes(tmp_path: Path) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"hello")
    with _source(f)() as stream:
        assert stream.read() == b"hello"


def test_is_a_comparable_value(tmp_path: Path) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"x")
    st = os.lstat(f)
    assert FileSource(f, st) == FileSource(f, st)
    assert len({FileSource(f, st), FileSource(f, st)}) == 1


def test_refuses_growth_shrink_swap_and_symlink(tmp_path: Path) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"12345")
    source = _source(f)
    f.write_bytes(b"123456")
    with pytest.raises(ContextError, match="grew"), source() as stream:
        stream.read()
    f.write_bytes(b"12")
    with pytest.raises(ContextError, match="shrank"), source() as stream:
        stream.read()
    other = tmp_path / "b"
    other.write_bytes(b"12345")
    os.replace(other, f)
    with pytest.raises(ContextError, match="replaced"):
        source()
    f.unlink()
    f.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ContextError, match="cannot open"):
        source()


def test_hash_file_digest_and_stat(tmp_path: Path) -> None:
    f = tmp_path / "a"
    data = os.urandom(3 << 20)  # several 1 MiB reads
    f.write_bytes(data)
    st = os.lstat(f)
    result = hash_file(f, st)
    assert result.digest == _sha(data)
    assert (result.st.st_ino, result.st.st_size, result.stable) == (st.st_ino, len(data), True)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hash_file(empty, os.lstat(empty)).digest == _sha(b"")


def test_hash_file_refuses_a_changed_size_or_inode(tmp_path: Path) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"12345")
    st = os.lstat(f)
    f.write_bytes(b"1234")
    with pytest.raises(ContextError, match="changed size"):
        hash_file(f, st)
    (tmp_path / "b").write_bytes(b"1234")
    st = os.lstat(f)
    os.replace(tmp_path / "b", f)
    with pytest.raises(ContextError, match="replaced"):
        hash_file(f, st)
    f.unlink()
    with pytest.raises(ContextError, match="cannot read"):
        hash_file(f, st)


def test_hash_file_does_not_block_on_a_fifo_swapped_in(tmp_path: Path) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"x")
    st = os.lstat(f)
    f.unlink()
    os.mkfifo(f)
    with pytest.raises(ContextError, match="replaced"):
        hash_file(f, st)


def test_hash_files_in_parallel_keeps_order(tmp_path: Path) -> None:
    expected = []
    items = []
    for i in range(600):
        # every 150th file is large enough for the pool; the rest are hashed inline
        f = tmp_path / f"f{i}"
        data = os.urandom(1 << 20) if i % 150 == 0 else f"file {i}\n".encode() * (i % 50)
        f.write_bytes(data)
        items.append((f, os.lstat(f)))
        expected.append(_sha(data))
    assert [r.digest for r in hash_files(items, workers=4)] == expected
    assert [r.digest for r in hash_files(items, workers=1)] == expected
    assert hash_files([]) == []
