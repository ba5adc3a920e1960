"""The mtimes record of a layer: read back only in the order it was written, nothing from a
damaged one, and gc forgets those of layers without a snapshot."""

from __future__ import annotations

from pathlib import Path

from layerbuild.image.changes import Change, ChangeKind
from layerbuild.store import layermtimes

CHANGES = [
    Change("app", ChangeKind.DIR, mtime=1),
    Change("app/a", ChangeKind.FILE, mtime=2),
    Change("app/b", ChangeKind.SYMLINK, link="a", mtime=3),
]
SUMMARIES = {"app": "dir 0755 0:0", "app/a": "sha256:x 0644 0:0", "app/b": "symlink:a"}


def test_a_record_reads_back_by_path(tmp_path: Path) -> None:
    record = tmp_path / "r"
    layermtimes.write(record, CHANGES, [1_000, 2_000, 3_000])
    assert layermtimes.load(record, SUMMARIES) == {"app": 1_000, "app/a": 2_000, "app/b": 3_000}


def test_a_record_of_another_order_or_damaged_is_not_used(tmp_path: Path) -> None:
    record = tmp_path / "r"
    layermtimes.write(record, CHANGES, [1, 2, 3])
    reordered = dict(reversed(SUMMARIES.items()))
    assert layermtimes.load(record, reordered) is None
    assert layermtimes.load(record, {**SUMMARIES, "app/c": "x"}) is None
    record.write_bytes(record.read_bytes()[:-3])
    assert layermtimes.load(record, SUMMARIES) is None
    assert layermtimes.load(tmp_path / "missing", SUMMARIES) is None


def test_kept_records_and_gc(tmp_path: Path) -> None:
    for hex_ in ("aa", "bb"):
        src = tmp_path / f"tmp-{hex_}"
        layermtimes.write(src, CHANGES, [1, 2, 3])
        layermtimes.keep(tmp_path, src, hex_)
        assert not src.exists()
    layermtimes.forget(tmp_path, {"bb"})
    assert sorted(p.name for p in layermtimes.mtimes_dir(tmp_path).iterdir()) == ["bb"]
    assert layermtimes.load(layermtimes.mtimes_dir(tmp_path) / "bb", SUMMARIES) is not None
