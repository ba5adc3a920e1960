"""Lstat: the compact lstat a selected entry keeps holds the fields of os.lstat it names."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

from layerbuild.context.lstat import Lstat, compact
from layerbuild.context.select import select


def test_compact_keeps_every_field_it_names(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    st = os.lstat(path)
    small = compact(st)
    assert isinstance(small, Lstat)
    for name in Lstat._fields:
        assert getattr(small, name) == getattr(st, name), name


def test_compact_holds_little_more_than_half_of_a_stat_result(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        stats = [os.lstat(tmp_path) for _ in range(1000)]
        full = tracemalloc.get_traced_memory()[0] - before
        kept = [compact(st) for st in stats]
        del stats
        small = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(kept) == 1000
    assert small < full * 0.6  # the ints it keeps are shared with the stat_result


def test_a_selection_keeps_compact_lstats(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x")
    files = select(tmp_path, "d", ignore=None, excludes=())
    assert [f.rel for f in files] == ["", "f"]
    assert all(isinstance(f.st, Lstat) for f in files)
    assert files[1].st.st_size == 1 and files[1].st.st_ino == os.lstat(tmp_path / "d/f").st_ino
