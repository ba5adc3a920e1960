"""Export an image's merged filesystem to a local directory (`--output type=local`).

The layers are applied in order by `store.unpack.apply_layer`, the one place that turns layer
tars into files: it resolves every path itself, refuses entries that would escape the root and
applies whiteouts. Owners are kept when running as uid 0: real root writes the image's ids; a
rootless build, root of its user namespace, writes them through its map, so on the host they
are the caller (for 0) and the caller's subordinate ids (as with `podman unshare`); with no
subordinate ids only root's files keep their owner. Device nodes need real root and are
skipped otherwise.

The tree is built in a temporary directory beside `dest` and renamed into place, so `dest` is
either untouched or complete. `dest` must be absent or an empty directory: merging an image into
existing files would leave a tree that is neither.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from layerbuild.context.filesource import FileSource
from layerbuild.errors import ExportError, ImageFormatError
from layerbuild.image import mediatypes as mt
from layerbuild.image.changes import Change, ChangeKind, sorted_changes
from layerbuild.image.decompress import open_layer
from layerbuild.image.descriptor import Descriptor
from layerbuild.image.tarwriter import write_tar
from layerbuild.store.images import read_image
from layerbuild.store.unpack import apply_layer

if TYPE_CHECKING:
    from layerbuild.store.layout import Store

_ROOT_MODE = 0o755


def write_rootfs(store: Store, desc: Descriptor, dest: Path) -> None:
    """Write the filesystem of the image `desc` into the new or empty directory `dest`."""
    _, manifest, _ = read_image(store, desc)
    _check_dest(dest)
    work = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    try:
        work.mkdir()
        os.chmod(work, _ROOT_MODE)  # mkdir's mode is filtered by the umask
        for layer in manifest.layers:
            _apply(store, layer, work)
        if dest.exists():
            dest.rmdir()  # checked empty above; rename cannot replace a directory otherwise
        os.rename(work, dest)
    except OSError as e:
        raise ExportError(
            f"cannot write the image filesystem to {dest}: {e.strerror or e}",
            hint="check that the parent directory is writable and has free space",
        ) from e
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _apply(store: Store, layer: Descriptor, root: Path) -> None:
    try:
        compression = mt.layer_compression(layer.media_type)
    except ValueError as e:
        raise ImageFormatError(
            f"layer {layer.digest} has media type {layer.media_type!r}, which is not a layer",
            hint="the image manifest is malformed; rebuild or pull it again",
        ) from e
    with store.content.open(layer.digest) as blob:
        apply_layer(open_layer(blob, compression), root)


def _check_dest(dest: Path) -> None:
    if not dest.exists() and not dest.is_symlink():
        if not dest.parent.is_dir():
            raise ExportError(
                f"cannot write the image filesystem to {dest}: {dest.parent} does not exist",
                hint="create the parent directory first",
            )
        return
    if dest.is_symlink() or not dest.is_dir():
        raise ExportError(
            f"{dest} exists and is not a directory", hint="choose a new or empty directory"
        )
    if any(dest.iterdir()):
        raise ExportError(
            f"{dest} is not empty", hint="choose a new or empty directory, or remove its contents"
        )


def write_rootfs_tar(store: Store, desc: Descriptor, dest: Path | BinaryIO) -> None:
    """The image's merged filesystem as one deterministic tar (buildx `--output type=tar`)."""
    _, manifest, _ = read_image(store, desc)
    root = store.snapshots.rootfs(store, list(manifest.layers))
    changes = sorted_changes(_walk(root, ""))
    if not isinstance(dest, Path):
        write_tar(changes, dest)
        return
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("wb") as out:
            write_tar(changes, out)
        os.replace(tmp, dest)
    except OSError as e:
        raise ExportError(f"cannot write {dest}: {e.strerror or e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def _walk(root: Path, rel: str) -> Iterator[Change]:
    """Every entry below `root` as a Change (hard links kept as links, symlinks not followed)."""
    first: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root / rel if rel else root):
        dirnames.sort()
        base = os.path.relpath(dirpath, root)
        for name in sorted([*dirnames, *filenames]):
            path = name if base == "." else f"{base}/{name}"
            st = os.lstat(root / path)
            yield _entry(root / path, path, st, first)


_KINDS = {
    stat.S_IFDIR: ChangeKind.DIR,
    stat.S_IFLNK: ChangeKind.SYMLINK,
    stat.S_IFIFO: ChangeKind.FIFO,
    stat.S_IFCHR: ChangeKind.CHARDEV,
    stat.S_IFBLK: ChangeKind.BLOCKDEV,
}


def _entry(full: Path, path: str, st: os.stat_result, first: dict[tuple[int, int], str]) -> Change:
    fmt = stat.S_IFMT(st.st_mode)
    change = Change(
        path,
        _KINDS.get(fmt, ChangeKind.FIFO),
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        mtime=int(st.st_mtime),
    )
    if fmt == stat.S_IFREG:
        inode = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and inode in first:
            return replace(change, kind=ChangeKind.HARDLINK, link=first[inode])
        first.setdefault(inode, path)
        return replace(change, kind=ChangeKind.FILE, size=st.st_size, content=FileSource(full, st))
    if fmt == stat.S_IFLNK:
        return replace(change, link=os.readlink(full))
    if fmt in (stat.S_IFCHR, stat.S_IFBLK):
        return replace(change, devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev))
    return change
