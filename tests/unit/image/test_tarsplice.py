"""Splicing: a layer packed with the unchanged entries copied from the previous layer's tar is
byte for byte the layer a cold pack of the same Changes writes, whatever changed (content,
size, mode, names, links, added and removed files), for every compression; only what changed
is read from its file, and a file that changes while it is packed is refused as before."""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from layerbuild.context.filesource import FileSource
from layerbuild.digest import Digest
from layerbuild.errors import ContextError
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.compress import pack_layer
from layerbuild.image.decompress import open_layer
from layerbuild.image.tarsplice import EntryIndex, EntryLog, Splice, SpliceSourceError
from tests.support.contexttree import file_digests, tree_changes

COMPRESSIONS = ("gzip", "zstd", "none")


def pack(
    changes: list[Change], compression: str, splice: Splice | None = None
) -> tuple[bytes, EntryIndex]:
    out, log = io.BytesIO(), EntryLog()
    pack_layer(changes, out, compression=compression, digests={}, splice=splice, log=log)
    return out.getvalue(), log.index()


def splice_of(blob: bytes, index: EntryIndex, compression: str, changes: list[Change]) -> Splice:
    stream = open_layer(io.BytesIO(blob), compression)
    return Splice(index, stream, file_digests(changes))


def random_tree(root: Path, rng: random.Random, files: int = 300) -> None:
    for i in range(files):
        path = root / f"d{rng.randrange(8)}" / f"s{rng.randrange(3)}" / f"f{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.choice((0, 1, 300, 511, 512, 513, 5000, 70_000))
        path.write_bytes(rng.randbytes(size))
        os.utime(path, (1_600_000_000, 1_600_000_000 + i))
    big = root / "big.bin"
    big.write_bytes(rng.randbytes(3 * (1 << 20) + 123))  # more than one tar writer chunk
    (root / "link").symlink_to("big.bin")


def _edit(root: Path, rng: random.Random) -> int:
    """A seeded mix of edits; returns how many files must be read again (at least)."""
    files = sorted(p for p in root.rglob("*.txt") if p.stat().st_size > 0)
    victims = rng.sample(files, 12)
    same_size, grown, mode, renamed, removed, linked = (victims[i::6] for i in range(6))
    for p in same_size:
        data = bytearray(p.read_bytes())
        data[0] ^= 0xFF
        p.write_bytes(bytes(data))
    for p in grown:
        p.write_bytes(p.read_bytes() + b"more")
    for p in mode:
        p.chmod(0o755)
    for p in renamed:
        p.rename(p.with_name("renamed-" + p.name))
    for p in removed:
        p.unlink()
    for p in linked:
        os.link(p, p.with_name("hardlink-" + p.name))
    new = root / "d0" / "added.txt"
    new.write_bytes(rng.randbytes(777))
    return len(same_size) + len(grown) + 1


EDITS: dict[str, Callable[[Path], None]] = {
    "content, same size": lambda r: (r / "big.bin").write_bytes(
        b"x" + (r / "big.bin").read_bytes()[1:]
    ),
    "content, other size": lambda r: (r / "big.bin").write_bytes(b"short"),
    "added": lambda r: (r / "a-new-first.txt").write_bytes(b"new\n" * 300),
    "removed": lambda r: (r / "big.bin").unlink(),
    "renamed": lambda r: (r / "big.bin").rename(r / "big2.bin"),
    "mode": lambda r: (r / "big.bin").chmod(0o600),
    "hard link": lambda r: os.link(r / "big.bin", r / "a-link-first.bin"),
    "mtime": lambda r: os.utime(r / "big.bin", (1_700_000_000, 1_700_000_000)),
    # entries without data, spliced when their header is the old stream's next bytes
    "symlink": lambda r: _relink(r / "link", "elsewhere"),
    "directory mode": lambda r: (r / "d3").chmod(0o700),
    "empty file added": lambda r: (r / "d2" / "empty.txt").write_bytes(b""),
}
# how many files an edit makes the pack read again: the one it touched, unless it has no data
# to read (a hard link's data moves to its first name, which is new)
READS = {"removed": 0, "symlink": 0, "directory mode": 0, "empty file added": 0}


def _relink(link: Path, target: str) -> None:
    link.unlink()
    link.symlink_to(target)


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_spliced_layer_is_the_cold_layer(tmp_path: Path, compression: str, seed: int) -> None:
    rng = random.Random(seed)
    random_tree(tmp_path, rng)
    before = tree_changes(tmp_path)
    blob, index = pack(before, compression)
    must_read = _edit(tmp_path, rng)
    after = tree_changes(tmp_path)
    splice = splice_of(blob, index, compression, after)
    spliced, new_index = pack(after, compression, splice)
    cold, cold_index = pack(after, compression)
    assert spliced == cold
    assert new_index == cold_index  # the next pack splices from it just as well
    files = sum(1 for c in after if c.kind is ChangeKind.FILE and c.size > 0)
    assert splice.spliced + splice.written == files
    assert must_read <= splice.written <= must_read + 8  # renamed, linked, chmod'ed ones too
    assert splice.spliced >= files - must_read - 8


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_each_kind_of_change(tmp_path: Path, edit: str, compression: str) -> None:
    random_tree(tmp_path, random.Random(9), files=40)
    before = tree_changes(tmp_path)
    blob, index = pack(before, compression)
    EDITS[edit](tmp_path)
    after = tree_changes(tmp_path)
    splice = splice_of(blob, index, compression, after)
    assert pack(after, compression, splice)[0] == pack(after, compression)[0]
    assert splice.spliced >= 30
    # the one file the edit touched is read again, nothing else
    assert splice.written == READS.get(edit, 1)


def test_only_changed_files_are_read(tmp_path: Path) -> None:
    random_tree(tmp_path, random.Random(4), files=50)
    before = tree_changes(tmp_path)
    blob, index = pack(before, "gzip")
    (tmp_path / "big.bin").write_bytes(b"changed")
    after = tree_changes(tmp_path)
    splice = splice_of(blob, index, "gzip", after)
    for c in after:  # an unchanged file is not opened: make it unreadable
        if c.path != "big.bin" and isinstance(c.content, FileSource):
            os.chmod(c.content.path, 0)
    pack(after, "gzip", splice)
    assert (splice.written, splice.read_bytes) == (1, len(b"changed"))


def test_a_file_that_changes_while_packed_is_refused(tmp_path: Path) -> None:
    random_tree(tmp_path, random.Random(5), files=20)
    before = tree_changes(tmp_path)
    blob, index = pack(before, "gzip")
    (tmp_path / "big.bin").write_bytes(b"changed")
    after = tree_changes(tmp_path)
    splice = splice_of(blob, index, "gzip", after)
    (tmp_path / "big.bin").write_bytes(b"changed again, longer")  # after its lstat
    with pytest.raises(ContextError, match="big.bin grew while the build was copying it"):
        pack(after, "gzip", splice)


def test_an_old_stream_shorter_than_its_index_fails_the_splice(tmp_path: Path) -> None:
    random_tree(tmp_path, random.Random(6), files=20)
    changes = tree_changes(tmp_path)
    blob, index = pack(changes, "none")
    splice = Splice(index, io.BytesIO(blob[: len(blob) // 2]), file_digests(changes))
    with pytest.raises(SpliceSourceError, match="ends before its index says"):
        pack(changes, "none", splice)


def test_a_wrong_digest_in_the_index_only_costs_a_read(tmp_path: Path) -> None:
    random_tree(tmp_path, random.Random(8), files=20)
    changes = tree_changes(tmp_path)
    blob, index = pack(changes, "none")
    wrong = bytes(len(index.sha256s))
    damaged = EntryIndex(index.paths, index.offsets, index.header_sizes, index.meta, wrong)
    splice = Splice(damaged, io.BytesIO(blob), file_digests(changes))
    assert pack(changes, "none", splice)[0] == blob
    assert splice.spliced == 0


def test_entry_index_arrays_must_agree() -> None:
    log = EntryLog()
    index = log.index()
    with pytest.raises(ValueError, match="different lengths"):
        EntryIndex(["a"], index.offsets, index.header_sizes, index.meta, b"")


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_mtimes_clamped_to_the_epoch(tmp_path: Path, compression: str) -> None:
    """With SOURCE_DATE_EPOCH, an mtime past it is written as the epoch: a file touched after
    it still has the same header, and is spliced; one moved before it is not."""
    random_tree(tmp_path, random.Random(10), files=30)
    epoch = 1_600_000_010
    before = tree_changes(tmp_path)
    out, log = io.BytesIO(), EntryLog()
    pack_layer(before, out, compression=compression, digests={}, log=log, source_date_epoch=epoch)
    os.utime(tmp_path / "big.bin", (1_800_000_000, 1_800_000_000))  # still clamped
    first = sorted(tmp_path.rglob("*.txt"))[0]
    os.utime(first, (1_500_000_000, 1_500_000_000))  # below the epoch: another header
    after = tree_changes(tmp_path)
    splice = splice_of(out.getvalue(), log.index(), compression, after)
    spliced, cold = io.BytesIO(), io.BytesIO()
    pack_layer(after, spliced, compression=compression, splice=splice, source_date_epoch=epoch)
    pack_layer(after, cold, compression=compression, source_date_epoch=epoch)
    assert spliced.getvalue() == cold.getvalue()
    assert splice.written == (1 if first.stat().st_size else 0)


def test_entries_the_index_cannot_hold_are_left_out() -> None:
    """xattrs (PAX records the index does not describe) and numbers past 64 bits: such an
    entry is read from its file on the next pack."""
    log, digest = EntryLog(), Digest("sha256:" + "0" * 64)
    log.entry(Change("a", ChangeKind.FILE, size=5), b"h" * 512, digest, None)
    big = Change("b", ChangeKind.FILE, uid=1 << 70, size=5)
    log.entry(big, b"h" * 1536, digest, None)
    xattr = Change("c", ChangeKind.FILE, size=5, xattrs=(("user.x", b"1"),))
    log.entry(xattr, b"h" * 1536, digest, None)
    log.entry(Change("d", ChangeKind.FILE, size=5), b"h" * 512, None, None)  # no digest
    log.entry(Change("e", ChangeKind.FILE, size=5), b"h" * 512, digest, None)
    index = log.index()
    assert index.paths == ["a", "e"]
    assert list(index.offsets) == [0, 1024 * 2 + 1536 * 2 + 1024]
