"""Rootfs export: the merged filesystem of all layers, whiteouts applied, into a new directory."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from layerbuild.errors import ExportError, UnsafeArchiveError
from layerbuild.export.rootfs import write_rootfs, write_rootfs_tar
from layerbuild.store.layout import Store
from tests.support.cli import tree
from tests.unit.export.export_images import BuiltImage, build_image


def test_merged_filesystem(store: Store, image: BuiltImage, tmp_path: Path) -> None:
    dest = tmp_path / "rootfs"
    write_rootfs(store, image.desc, dest)
    assert tree(dest) == {
        "etc": "dir",
        "etc/hostname": "box\n",
        "app": "dir",
        "app/main.txt": "hello\n",
        "app/link": "-> main.txt",
    }  # bin/ was whited out by the second layer
    assert (dest / "etc").stat().st_mtime == 1_700_000_000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_empty_existing_directory_is_filled(
    store: Store, image: BuiltImage, tmp_path: Path
) -> None:
    dest = tmp_path / "rootfs"
    dest.mkdir()
    write_rootfs(store, image.desc, dest)
    assert (dest / "app" / "main.txt").read_text() == "hello\n"


def test_non_empty_destination_is_refused(store: Store, image: BuiltImage, tmp_path: Path) -> None:
    dest = tmp_path / "rootfs"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    with pytest.raises(ExportError, match="is not empty"):
        write_rootfs(store, image.desc, dest)
    assert [p.name for p in dest.iterdir()] == ["keep"]


def test_hostile_layer_is_refused_and_leaves_nothing(store: Store, tmp_path: Path) -> None:
    evil = build_image(store, [{"ok": b"fine", "../../escape": b"owned"}])
    dest = tmp_path / "rootfs"
    with pytest.raises(UnsafeArchiveError):
        write_rootfs(store, evil.desc, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    assert not (tmp_path.parent / "escape").exists()


def test_rootfs_tar_puts_a_hard_linked_files_data_first(store: Store, tmp_path: Path) -> None:
    """The walk meets `b` before `a/z` (a directory's entries before its subdirectories'), but
    `a/z` comes first in the tar, so it carries the data and `b` links to it."""
    linked = build_image(store, [{"b": b"data", "a": None, "a/z": "=> b"}])
    out = io.BytesIO()
    write_rootfs_tar(store, linked.desc, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        members = [m for m in tf.getmembers() if not m.isdir()]
        assert [(m.name, m.islnk(), m.linkname) for m in members] == [
            ("a/z", False, ""),
            ("b", True, "a/z"),
        ]
        data = tf.extractfile("a/z")
        assert data is not None and data.read() == b"data"
