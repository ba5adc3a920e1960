"""Runs of spliced entries: a run written in one piece is cut into compression chunks exactly
where its entries written one by one are, and a rebuild of many small files splices them (and
the directories, links and empty files between them) as a few runs, not entry by entry."""

from __future__ import annotations

import io
import os
import queue
import random
import threading
from pathlib import Path

import pytest

from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.chunkpipe import ChunkPipe
from layerbuild.image.oldstream import OldStream, SpliceSourceError
from layerbuild.image.tarsplice import EntryLog, Splice
from layerbuild.image.tarwriter import write_tar
from tests.support.contexttree import file_digests, tree_changes


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_run_is_cut_where_its_entries_one_by_one_are(seed: int) -> None:
    rng = random.Random(seed)
    feed = []
    for _ in range(600):
        header_size = rng.choice((512, 1024, 1536))
        size = rng.choice((0, 100, 4000, 60_000, 300_000))
        feed.append((rng.randbytes(header_size + size + (-size % 512)), header_size))
    runs, left = [], len(feed)
    while left:
        n = min(left, rng.randint(1, 80))
        runs.append(n)
        left -= n
    one_by_one = _collect(feed, None)
    in_runs = _collect(feed, runs)
    assert one_by_one == in_runs
    assert len(one_by_one) > 20  # the cuts were exercised
    assert b"".join(one_by_one) == b"".join(d for d, _ in feed)


def _collect(feed: list[tuple[bytes, int]], runs: list[int] | None) -> list[bytes]:
    """The chunks a pipe emits for entries (bytes, header length): one by one, or as runs
    of the given numbers of entries."""
    out: queue.Queue[bytes | None] = queue.Queue()
    pipe = ChunkPipe(out, threading.Event())
    if runs is None:
        for data, header_size in feed:
            pipe.entry_start(data[:header_size])
            pipe.write(data)
    else:
        at = 0
        for n in runs:
            part, starts, offset = feed[at : at + n], [], 0
            at += n
            for data, header_size in part:
                starts.append((offset, header_size))
                offset += len(data)
            pipe.write_run(b"".join(d for d, _ in part), starts)
    pipe.flush()
    chunks = []
    while not out.empty():
        item = out.get_nowait()
        assert item is not None
        chunks.append(item)
    return chunks


class _Recorder:
    """A tar output that counts its writes: one by one, and in runs."""

    def __init__(self) -> None:
        self.data = io.BytesIO()
        self.writes = 0
        self.runs = 0
        self.entries_in_runs = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.data.write(data)

    def write_run(self, data: bytes, starts: list[tuple[int, int]]) -> None:
        self.runs += 1
        self.entries_in_runs += len(starts)
        self.data.write(data)


def _small_tree(root: Path, files: int = 400) -> None:
    rng = random.Random(7)
    for i in range(files):
        path = root / f"d{i % 9}" / f"f{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.choice((0, 10, 700, 9000))))
        os.utime(path, (1_600_000_000, 1_600_000_000))
    (root / "d3" / "link").symlink_to("f0003.txt")
    for d in root.iterdir():
        os.utime(d, (1_600_000_000, 1_600_000_000))


def _write(changes: list[Change], splice: Splice | None = None) -> tuple[_Recorder, EntryLog]:
    out, log = _Recorder(), EntryLog()
    write_tar(changes, out, digests={}, splice=splice, log=log)
    return out, log


def test_many_small_files_are_spliced_as_a_few_runs(tmp_path: Path) -> None:
    _small_tree(tmp_path)
    before = tree_changes(tmp_path)
    old, log = _write(before)
    changed = tmp_path / "d4" / "f0004.txt"
    changed.write_bytes(b"changed\n")
    os.utime(changed, (1_600_000_000, 1_600_000_000))
    after = tree_changes(tmp_path)
    splice = Splice(log.index(), io.BytesIO(old.data.getvalue()), file_digests(after))
    new, new_log = _write(after, splice)
    cold, cold_log = _write(after)
    assert new.data.getvalue() == cold.data.getvalue()
    assert new_log.index() == cold_log.index()
    # every entry but the changed file went into runs: directories, the link and empty files
    # too, and a run is broken only where that file was written (and at the run size bound)
    assert new.entries_in_runs == len(after) - 1
    assert new.runs <= 4
    assert new.writes <= 3  # the changed file (header and data in one piece), the end blocks
    assert (splice.written, splice.read_bytes) == (1, len(b"changed\n"))


def test_a_changed_directory_is_written_and_the_run_goes_on_after_it(tmp_path: Path) -> None:
    _small_tree(tmp_path)
    before = tree_changes(tmp_path)
    old, log = _write(before)
    os.utime(tmp_path / "d5", (1_700_000_000, 1_700_000_000))
    (tmp_path / "d6").chmod(0o700)
    after = tree_changes(tmp_path)
    splice = Splice(log.index(), io.BytesIO(old.data.getvalue()), file_digests(after))
    new, _ = _write(after, splice)
    assert new.data.getvalue() == _write(after)[0].data.getvalue()
    assert splice.written == 0
    assert new.entries_in_runs == len(after) - 2
    assert sum(1 for c in after if c.kind is ChangeKind.DIR) >= 9


def test_the_old_stream_keeps_only_what_may_still_be_copied() -> None:
    data = bytes(range(256)) * 20_000  # 5 MB: several reader pieces
    old = OldStream(io.BytesIO(data))
    assert old.peek(10, 5) == data[10:15]
    assert old.take(10, 3_000_000) == data[10:3_000_000]
    assert old.position == 3_000_000
    old.drop(4_500_000)
    assert old.read(100) == data[4_500_000:4_500_100]
    assert old.peek(len(data) - 4, 100) == data[-4:]  # fewer at the end
    with pytest.raises(SpliceSourceError, match="ends before its index says"):
        old.take(len(data) - 4, len(data) + 1)
    old.close()


def test_a_read_error_of_the_old_stream_fails_the_splice() -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            raise OSError("disk on fire")

    old = OldStream(Broken())  # type: ignore[arg-type]
    with pytest.raises(SpliceSourceError, match="disk on fire"):
        old.peek(0, 10)
    old.close()
