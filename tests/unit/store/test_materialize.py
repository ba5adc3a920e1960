"""materialize: a COPY layer's tree written from its Changes equals the tree unpacking its tar
gives; entries unchanged since the previous snapshot are hard links into it, and nothing is
linked through a path that was not a directory there."""

from __future__ import annotations

import io
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from layerbuild.context.hashing import changes_digest
from layerbuild.digest import Digest
from layerbuild.engine.copysemantics import copy_changes
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tarwriter import write_tar
from layerbuild.store.materialize import Previous, materialize
from layerbuild.store.unpack import apply_layer

pytestmark = pytest.mark.root  # owners are set with chown

EPOCH = None


class _Empty:
    """An image with nothing in it, as copy_changes' destination."""

    def resolve(self, path: str) -> str:
        return path

    def lookup(self, path: str) -> None:
        return None


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything an overlay lower shows of each entry: kind and mode, owner, mtime, size,
    content or link target, and which entries share an inode (hard links)."""
    out: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            body: object = None
            if stat.S_ISLNK(st.st_mode):
                body = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                body = Path(path).read_bytes()
            first = inodes.setdefault(st.st_ino, rel)
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, body, first)
    return out


def _context(root: Path) -> Path:
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "a.txt").write_text("alpha\n")
    (root / "d" / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    (root / "d" / "exec").write_text("#!/bin/sh\n")
    (root / "d" / "exec").chmod(0o4755)
    (root / "d" / "link").symlink_to("a.txt")
    os.link(root / "d" / "a.txt", root / "d" / "sub" / "hard.txt")
    return root


def _changes(ctx: Path) -> list[Change]:
    return copy_changes(
        ctx,
        ["d"],
        "/app/",
        workdir="/",
        tree=_Empty(),  # type: ignore[arg-type]
        ignore=None,
        excludes=(),
        chown=(1000, 1000),
        chmod=None,
        mtime=None,
        now=1_700_000_000,
    )


def _pack(changes: list[Change]) -> tuple[bytes, dict[str, Digest], dict[str, str]]:
    out = io.BytesIO()
    packed: dict[str, Digest] = {}
    write_tar(changes, out, source_date_epoch=EPOCH, digests=packed)
    _, files = changes_digest(changes, None)
    return out.getvalue(), packed, files


def _unpacked(tar: bytes, dest: Path) -> Path:
    dest.mkdir(mode=0o755)
    apply_layer(io.BytesIO(tar), dest, whiteouts="overlay")
    return dest


def _written(changes: list[Change], dest: Path, **kw: object) -> Path:
    _, packed, files = _pack(changes)
    dest.mkdir(mode=0o755)
    assert materialize(changes, dest, files=files, expected=packed, epoch=EPOCH, **kw)  # type: ignore[arg-type]
    return dest


def test_written_tree_equals_the_unpacked_tar(tmp_path: Path) -> None:
    changes = _changes(_context(tmp_path / "ctx"))
    tar, _, _ = _pack(changes)
    expected = _unpacked(tar, tmp_path / "unpacked")
    got = _written(changes, tmp_path / "written", previous=None)
    assert tree(got) == tree(expected)
    a = os.lstat(got / "app" / "a.txt")
    assert (a.st_uid, a.st_gid, a.st_nlink) == (1000, 1000, 2)  # chown, and the hard link
    assert stat.S_IMODE(os.lstat(got / "app" / "exec").st_mode) == 0o4755


def test_unchanged_entries_are_linked_from_the_previous_snapshot(tmp_path: Path) -> None:
    ctx = _context(tmp_path / "ctx")
    first = _changes(ctx)
    _, _, first_files = _pack(first)
    old = _written(first, tmp_path / "old", previous=None)
    time.sleep(0.02)
    (ctx / "d" / "sub" / "b.bin").write_bytes(os.urandom(70_000))  # same size, new bytes
    second = _changes(ctx)
    tar, _, _ = _pack(second)
    new = _written(second, tmp_path / "new", previous=Previous(old, first_files))
    assert tree(new) == tree(_unpacked(tar, tmp_path / "unpacked"))
    same = os.lstat(old / "app" / "exec").st_ino == os.lstat(new / "app" / "exec").st_ino
    assert same, "an unchanged file is a hard link into the previous snapshot"
    changed = old / "app" / "sub" / "b.bin", new / "app" / "sub" / "b.bin"
    assert os.lstat(changed[0]).st_ino != os.lstat(changed[1]).st_ino
    assert changed[0].read_bytes() != changed[1].read_bytes()


def test_never_links_through_what_was_not_a_directory(tmp_path: Path) -> None:
    """A previous snapshot whose `app/sub` was a symlink (to a directory outside) must not be
    followed, even when its summaries claim the same file below it."""
    ctx = _context(tmp_path / "ctx")
    changes = _changes(ctx)
    _, _, files = _pack(changes)
    outside = tmp_path / "outside"
    outside.mkdir()
    old = tmp_path / "old"
    (old / "app").mkdir(parents=True)
    (old / "app" / "sub").symlink_to(outside)
    forged = dict(files)
    forged["app/sub"] = "symlink:" + str(outside) + " 0777 0:0"
    target = outside / "b.bin"
    target.write_bytes((ctx / "d" / "sub" / "b.bin").read_bytes())
    new = _written(changes, tmp_path / "new", previous=Previous(old, forged))
    assert os.lstat(new / "app" / "sub" / "b.bin").st_ino != os.lstat(target).st_ino


def test_context_changed_since_packing_is_refused(tmp_path: Path) -> None:
    ctx = _context(tmp_path / "ctx")
    changes = _changes(ctx)
    _, packed, files = _pack(changes)
    (ctx / "d" / "a.txt").write_text("ALPHA\n")  # same size, other bytes
    dest = tmp_path / "dest"
    dest.mkdir()
    assert not materialize(changes, dest, files=files, expected=packed, epoch=None, previous=None)


def test_other_kinds_are_left_to_the_unpacker(tmp_path: Path) -> None:
    fifo = Change("app/pipe", ChangeKind.FIFO, mode=0o644, uid=0, gid=0, mtime=0)
    folder = Change("app", ChangeKind.DIR, mode=0o755, uid=0, gid=0, mtime=0)
    dest = tmp_path / "dest"
    dest.mkdir()
    assert not materialize([folder, fifo], dest, files={}, expected={}, epoch=None, previous=None)
    escape = Change("../x", ChangeKind.DIR, mode=0o755, uid=0, gid=0, mtime=0)
    assert not materialize([escape], dest, files={}, expected={}, epoch=None, previous=None)
    assert not (tmp_path / "x").exists()


def test_without_expected_digests_it_records_what_it_wrote(tmp_path: Path) -> None:
    """Written while the layer is packed for the first time, the tree records the digest of
    every file it copied, for the caller to compare with the packed ones."""
    changes = _changes(_context(tmp_path / "ctx"))
    tar, packed, files = _pack(changes)
    dest = tmp_path / "dest"
    dest.mkdir(mode=0o755)
    written: dict[str, Digest] = {}
    assert materialize(
        changes, dest, files={}, expected=None, epoch=EPOCH, previous=None, written=written
    )
    assert written == packed
    assert tree(dest) == tree(_unpacked(tar, tmp_path / "unpacked"))


def test_cancelled_writer_stops(tmp_path: Path) -> None:
    changes = _changes(_context(tmp_path / "ctx"))
    _, packed, files = _pack(changes)
    cancel = threading.Event()
    cancel.set()
    dest = tmp_path / "dest"
    dest.mkdir()
    done = materialize(
        changes, dest, files=files, expected=packed, epoch=None, previous=None, cancel=cancel
    )
    assert not done and not any(dest.iterdir())


def test_mtimes_are_clamped_as_the_tar_writer_clamps_them(tmp_path: Path) -> None:
    """With SOURCE_DATE_EPOCH older than the files, the tar says the epoch: so must the tree."""
    changes = _changes(_context(tmp_path / "ctx"))
    epoch = 1_000_000_000
    out = io.BytesIO()
    packed: dict[str, Digest] = {}
    write_tar(changes, out, source_date_epoch=epoch, digests=packed)
    _, files = changes_digest(changes, None)
    dest = tmp_path / "dest"
    dest.mkdir(mode=0o755)
    assert materialize(changes, dest, files=files, expected=packed, epoch=epoch, previous=None)
    assert tree(dest) == tree(_unpacked(out.getvalue(), tmp_path / "unpacked"))
    assert os.lstat(dest / "app" / "a.txt").st_mtime == epoch
