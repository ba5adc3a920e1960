"""write_snapshot: after a small change, the snapshot of a COPY layer is a delta that, stacked
above the previous layer's snapshot as overlayfs stacks lowers, shows exactly the tree the
layer's tar unpacks to; what a delta cannot say (a removed file) gets a full tree, as equal."""

from __future__ import annotations

import io
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from layerbuild.context.hashing import changes_digest
from layerbuild.digest import Digest
from layerbuild.engine.copysemantics import copy_changes
from layerbuild.image.changes import Change
from layerbuild.image.tarwriter import write_tar
from layerbuild.store.deltasnap import write_snapshot
from layerbuild.store.materialize import Previous
from layerbuild.store.unpack import apply_layer

pytestmark = pytest.mark.root  # owners are set with chown

OLD = "ab" * 32  # the previous layer's diff_id hex, as a delta names its base


class _Empty:
    def resolve(self, path: str) -> str:
        return path

    def lookup(self, path: str) -> None:
        return None


Entry = tuple[int, int, int, int, object]


def _entry(path: str) -> Entry:
    st = os.lstat(path)
    body: object = None
    if stat.S_ISLNK(st.st_mode):
        body = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        body = Path(path).read_bytes()
    return (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, body)


def tree(root: Path) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = _entry(path)
    return out


def merged(dirs: list[Path], rel: str = "") -> dict[str, Entry]:
    """What an overlay of `dirs` (top-most first) shows below `rel`, by overlayfs' rules: an
    entry comes from the top-most layer that has it; a directory merges the layers below it
    down to the first that has something else there."""
    names: set[str] = set()
    for d in dirs:
        names.update(os.listdir(d / rel) if rel else os.listdir(d))
    out: dict[str, Entry] = {}
    for name in names:
        path = f"{rel}/{name}" if rel else name
        having = [d for d in dirs if os.path.lexists(d / path)]
        top = having[0]
        out[path] = _entry(str(top / path))
        if stat.S_ISDIR(out[path][0]):
            below: list[Path] = []
            for d in having:
                if not stat.S_ISDIR(os.lstat(d / path).st_mode):
                    break
                below.append(d)
            out.update(merged(below, path))
    return out


def _context(root: Path) -> Path:
    for sub in ("a", "b/c", "gone"):
        (root / "d" / sub).mkdir(parents=True)
    for i in range(12):
        (root / "d" / ("a" if i % 2 else "b/c") / f"f{i}.txt").write_text(f"file {i}\n")
    (root / "d" / "gone" / "x").write_text("under a directory\n")
    (root / "d" / "link").symlink_to("a/f1.txt")
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
    write_tar(changes, out, source_date_epoch=None, digests=packed)
    _, files = changes_digest(changes, None)
    return out.getvalue(), packed, files


def _write(
    changes: list[Change], dest: Path, previous: Previous | None, record: Path | None = None
) -> str | None:
    _, packed, files = _pack(changes)
    dest.mkdir(mode=0o755)
    return write_snapshot(
        changes,
        dest,
        files=files,
        expected=packed,
        epoch=None,
        previous=previous,
        record_to=record,
    )


def _rebuild(tmp_path: Path, change: Callable[[Path], None]) -> tuple[str | None, Path, Path]:
    """The snapshot of the layer after `change`, over a full one of the layer before it: (what
    write_snapshot said, its directory, the full one below)."""
    ctx = _context(tmp_path / "ctx")
    first = _changes(ctx)
    old = tmp_path / "old"
    assert _write(first, old, None) == ""  # nothing to be a delta of: a full tree
    first_files = _pack(first)[2]
    time.sleep(0.02)
    change(ctx / "d")
    second = _changes(ctx)
    tar, _, _ = _pack(second)
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    apply_layer(io.BytesIO(tar), unpacked, whiteouts="overlay")
    previous = Previous(old, first_files, OLD)
    base = _write(second, tmp_path / "new", previous)
    shown = merged([tmp_path / "new", old]) if base else tree(tmp_path / "new")
    assert shown == tree(unpacked)
    return base, tmp_path / "new", old


def test_a_changed_file_is_a_delta_of_it_and_its_parents(tmp_path: Path) -> None:
    base, new, _ = _rebuild(tmp_path, lambda d: (d / "b/c/f4.txt").write_text("changed\n"))
    assert base == OLD
    assert sorted(tree(new)) == ["app", "app/b", "app/b/c", "app/b/c/f4.txt"]


def test_an_added_file(tmp_path: Path) -> None:
    base, new, _ = _rebuild(tmp_path, lambda d: (d / "a" / "new.txt").write_text("new\n"))
    assert base == OLD and sorted(tree(new)) == ["app", "app/a", "app/a/new.txt"]


def test_a_touched_file_is_in_the_delta_for_its_mtime(tmp_path: Path) -> None:
    base, new, _ = _rebuild(tmp_path, lambda d: os.utime(d / "a" / "f3.txt", (1, 1)))
    assert base == OLD and "app/a/f3.txt" in tree(new)


def test_a_directory_replaced_by_a_file(tmp_path: Path) -> None:
    def replace(d: Path) -> None:
        (d / "gone" / "x").unlink()
        (d / "gone").rmdir()
        (d / "gone").write_text("now a file\n")

    base, new, old = _rebuild(tmp_path, replace)
    assert base == OLD and (new / "app" / "gone").is_file() and (old / "app/gone/x").exists()


def test_a_removed_file_gets_a_full_tree(tmp_path: Path) -> None:
    base, new, _ = _rebuild(tmp_path, lambda d: (d / "a" / "f5.txt").unlink())
    assert base == ""
    assert (new / "app" / "b" / "c" / "f0.txt").is_file()


def test_a_delta_over_a_delta(tmp_path: Path) -> None:
    """The previous snapshot may itself be a delta: the new one is stacked above both."""
    _, first_delta, full = _rebuild(tmp_path, lambda d: (d / "a/f1.txt").write_text("one\n"))
    ctx = tmp_path / "ctx" / "d"
    before = _pack(_changes(ctx.parent))[2]
    (ctx / "b" / "c" / "f2.txt").write_text("two\n")
    second = _changes(ctx.parent)
    tar, _, _ = _pack(second)
    unpacked = tmp_path / "unpacked2"
    unpacked.mkdir()
    apply_layer(io.BytesIO(tar), unpacked, whiteouts="overlay")
    previous = Previous(full, before, "cd" * 32, (first_delta,))
    assert _write(second, tmp_path / "top", previous) == "cd" * 32
    assert merged([tmp_path / "top", first_delta, full]) == tree(unpacked)
    assert "app/a/f1.txt" not in tree(tmp_path / "top")


def test_the_mtimes_record_stands_in_for_the_snapshots_lstat(tmp_path: Path) -> None:
    """With the previous layer's record, unchanged entries are told by it, not by an lstat of
    the snapshot: an entry the snapshot shows with another mtime stays out of the delta, and
    a file touched since the record was written goes in."""
    ctx = _context(tmp_path / "ctx")
    first = _changes(ctx)
    old, record = tmp_path / "old", tmp_path / "mtimes"
    assert _write(first, old, None, record) == "" and record.is_file()
    first_files = _pack(first)[2]
    os.utime(old / "app" / "a" / "f1.txt", ns=(5, 5), follow_symlinks=False)
    os.utime(ctx / "d" / "a" / "f3.txt", (7, 7))
    second = _changes(ctx)
    previous = Previous(old, first_files, OLD, (), record)
    assert _write(second, tmp_path / "new", previous) == OLD
    assert sorted(tree(tmp_path / "new")) == ["app", "app/a", "app/a/f3.txt"]
    previous = Previous(old, first_files, OLD)  # no record: the snapshot's lstat decides
    assert _write(second, tmp_path / "lstat", previous) == OLD
    assert "app/a/f1.txt" in tree(tmp_path / "lstat")
