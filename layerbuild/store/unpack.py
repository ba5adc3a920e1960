"""Apply a layer tar under a directory: THE security boundary between an image and the host.

A layer is untrusted input. Every path is resolved by us, one component at a time, with
``openat(dirfd, name, O_NOFOLLOW | O_DIRECTORY)`` starting from a descriptor of the root, so the
kernel never resolves a symlink inside the tree on our behalf. An entry is refused
(UnsafeArchiveError, naming it) when:

- after lexical cleaning (a leading ``/`` is stripped, as every tar tool does) it still climbs out
  of the root with ``..`` (tar-slip);
- a parent component is a symlink (``a -> /etc`` then ``a/passwd``; ``a -> ..`` then ``a/a/x``):
  we never follow a symlink in a parent, even one that would stay inside the root;
- it would turn the root itself into something other than a directory (umoci CVE-2021-29136:
  a symlinked ``/.``);
- it is a hard link whose target escapes or passes through a symlink;
- it is a whiteout of ``.``/``..`` (``.wh..``, ``.wh...``).

A symlink at the *final* component is replaced, never written through (docker cp
CVE-2018-15664 raced exactly that). Whiteouts (``.wh.NAME``) and opaque markers
(``.wh..wh..opq``) apply to lower layers only: entries this layer wrote survive them (OCI
image-spec layer.md, "Whiteouts"). Device nodes are created only by real root (privilege.py);
otherwise they are skipped with a note. Owners are set by any uid 0, also in a rootless user
namespace (owners.py). Directory modes and mtimes are set after all entries, so that a read-only
directory can still receive its children and its mtime is not bumped by them. A hard link whose
target does not exist yet is made after the layer's other entries (older layerbuild layers put
some links before their data).

Assumption: nothing untrusted changes `root` while a layer is applied (snapshots are prepared in
a private temp directory). The walk is safe against what the archive itself does; chmod of a
fifo or device node right after creating it goes by name, which only a concurrent writer could
swap.

Modules: the walk confined to the root is unpackwalk.py, whiteouts and opaque markers are
whiteouts.py; making each kind of entry, and the order of it all, is here.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from layerbuild import privilege
from layerbuild.errors import ImageFormatError, UnsafeArchiveError
from layerbuild.hosterrors import at_path
from layerbuild.image.changes import WHITEOUT_PREFIX
from layerbuild.store.owners import Owners
from layerbuild.store.unpackwalk import (
    DIR_FLAGS,
    UnpackState,
    clean_entry_path,
    lstat_at,
    remove_at,
    unsafe_entry,
)
from layerbuild.store.whiteouts import apply_whiteout

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# xattrs a layer may set: capabilities (file caps of ping & co.) and the user namespace.
# trusted.overlay.* / user.overlay.* would change how overlayfs reads the snapshot; SELinux
# labels belong to the host's policy, not to an image.
_XATTR_PREFIXES = ("security.capability", "user.")
_OVERLAY_XATTRS = ("user.overlay.", "trusted.overlay.")


def _set_xattrs(state: UnpackState, fd: int, info: tarfile.TarInfo, entry: str) -> None:
    for key, value in info.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        attr = key[len("SCHILY.xattr.") :]
        if attr.startswith(_OVERLAY_XATTRS) or not attr.startswith(_XATTR_PREFIXES):
            state.note(f"{entry}: xattr {attr} not applied")
            continue
        raw = value.encode("utf-8", "surrogateescape")
        try:
            os.setxattr(fd, attr, raw)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES):
                raise
            state.note(f"{entry}: xattr {attr} not applied ({e.strerror})")


def _mtime_ns(info: tarfile.TarInfo) -> tuple[int, int]:
    ns = int(float(info.mtime) * 1_000_000_000)
    return (ns, ns)


def _write_file(state: UnpackState, tf: tarfile.TarFile, info: tarfile.TarInfo, fd: int) -> None:
    src = tf.extractfile(info)
    if src is not None:
        while chunk := src.read(_CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    state.owners.settle(info.name, info.uid, info.gid, info.mode & 0o7777, fd)


def _make_entry(
    state: UnpackState, tf: tarfile.TarFile, info: tarfile.TarInfo, pfd: int, base: str
) -> bool:
    """Create one non-directory entry in `pfd`; False when it was skipped."""
    entry = info.name
    if info.isreg():
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        # created with its mode (less the umask) in a private directory: mostly final already
        fd = os.open(base, flags, info.mode & 0o777, dir_fd=pfd)
        try:
            _write_file(state, tf, info, fd)
            _set_xattrs(state, fd, info, entry)
            os.utime(fd, ns=_mtime_ns(info))
        finally:
            os.close(fd)
        return True
    if info.issym():
        os.symlink(info.linkname, base, dir_fd=pfd)
    elif info.isfifo():
        os.mkfifo(base, info.mode & 0o7777, dir_fd=pfd)
    elif info.ischr() or info.isblk():
        if not state.privileged:
            state.note(f"{entry}: device node skipped (creating devices needs root)")
            return False
        kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
        dev = os.makedev(info.devmajor, info.devminor)
        os.mknod(base, kind | (info.mode & 0o7777), dev, dir_fd=pfd)
    else:
        state.note(f"{entry}: unsupported tar entry type {info.type!r} skipped")
        return False
    state.owners.set(info.name, info.uid, info.gid, base, pfd)
    if not info.issym():
        os.chmod(base, info.mode & 0o7777, dir_fd=pfd)  # mkfifo/mknod honour the umask
    os.utime(base, ns=_mtime_ns(info), dir_fd=pfd, follow_symlinks=False)
    return True


def _make_hardlink(state: UnpackState, info: tarfile.TarInfo, pfd: int, base: str) -> bool:
    """Link `base` in `pfd` to the entry's target; False when the target does not exist yet
    and the link is left for the end of the layer."""
    entry = info.name
    try:
        target = clean_entry_path(info.linkname)
    except UnsafeArchiveError:
        raise unsafe_entry(
            entry, f"hard link target {info.linkname!r} is outside the root"
        ) from None
    if not target:
        raise unsafe_entry(entry, "hard link to the root directory")
    tparent, tbase = posixpath.split(target)
    tfd = state.open_dir(tparent, entry, create=False)
    st = lstat_at(tbase, tfd) if tfd is not None else None
    try:
        if (tfd is None or st is None) and state.late_links is not None:
            state.late_links.append(info)
            return False
        if tfd is None or st is None:
            raise ImageFormatError(
                f"layer entry {entry!r}: hard link target {info.linkname!r} does not exist",
                hint="a hard link must point at a file that an earlier entry or layer created",
            )
        if stat.S_ISDIR(st.st_mode):
            raise unsafe_entry(entry, f"hard link to the directory {info.linkname!r}")
        # follow_symlinks=False: link the symlink itself (linkat without AT_SYMLINK_FOLLOW)
        os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
    finally:
        if tfd is not None:
            os.close(tfd)
    return True


def _make_late_links(state: UnpackState, tf: tarfile.TarFile) -> None:
    """The hard links that came before their target in the layer, now that it is all written.

    Layers must put a file's data before its links (OCI image-spec layer.md, containerd and
    umoci extract in one pass), and layerbuild writes them so; but layers from older layerbuild
    stores sorted a link named like Debian's /usr/bin/gunzip before its target
    /usr/bin/uncompress. Being lenient costs a list; a target still missing now is an error.
    """
    pending, state.late_links = state.late_links or [], None
    for info in pending:
        _apply_entry(state, tf, info)


def _apply_directory(state: UnpackState, info: tarfile.TarInfo, path: str) -> None:
    parent, base = posixpath.split(path)
    pfd = state.open_dir(parent, info.name, create=True)
    assert pfd is not None
    try:
        st = lstat_at(base, pfd)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            state.forget_parent()
            remove_at(base, pfd, st)  # a file or a symlink: replaced, never followed
            st = None
        if st is None:
            os.mkdir(base, 0o755, dir_fd=pfd)
        state.owners.set(info.name, info.uid, info.gid, base, pfd)
        fd = os.open(base, DIR_FLAGS, dir_fd=pfd)
        try:
            _set_xattrs(state, fd, info, info.name)
        finally:
            os.close(fd)
    finally:
        os.close(pfd)
    state.created.add(path)
    state.dir_meta[path] = info


def _apply_entry(state: UnpackState, tf: tarfile.TarFile, info: tarfile.TarInfo) -> None:
    path = clean_entry_path(info.name)
    parent, base = posixpath.split(path)
    if base.startswith(WHITEOUT_PREFIX):
        apply_whiteout(state, info.name, parent, base)
        return
    if info.isdir():
        if path:
            _apply_directory(state, info, path)
        else:
            state.dir_meta[""] = info  # the root keeps being a directory; only its metadata
        return
    if not path:
        raise unsafe_entry(info.name, "it would replace the image root with a non-directory")
    pfd = state.open_dir(parent, info.name, create=True)
    assert pfd is not None
    try:
        st = lstat_at(base, pfd)
        if st is not None:
            state.forget_parent()
            remove_at(base, pfd, st)  # an existing symlink is replaced, never written through
            if stat.S_ISDIR(st.st_mode):
                state.forget_dirs(path)
        if info.islnk():
            if not _make_hardlink(state, info, pfd, base):
                return
        elif not _make_entry(state, tf, info, pfd, base):
            return
    finally:
        os.close(pfd)
    state.created.add(path)


def _finish_directories(state: UnpackState) -> None:
    """Set directory modes and mtimes, deepest first, now that their children exist."""
    for path in sorted(state.dir_meta, key=lambda p: p.count("/") + bool(p), reverse=True):
        info = state.dir_meta[path]
        fd = state.open_dir(path, info.name, create=False)
        if fd is None:
            continue  # removed again by a later entry of this layer
        try:
            if not path:
                state.owners.set(info.name, info.uid, info.gid, fd)
            os.fchmod(fd, info.mode & 0o7777)
            os.utime(fd, ns=_mtime_ns(info))
        finally:
            os.close(fd)


def apply_layer(
    fileobj: BinaryIO,
    root: Path,
    *,
    rootless: bool | None = None,
    note: Callable[[str], None] | None = None,
    whiteouts: str = "apply",
) -> None:
    """Apply an uncompressed layer tar stream onto the directory `root` (see module docstring).

    `rootless` None means "unless real root" (privilege.py): only real root creates device
    nodes and writes trusted.* opaque xattrs. Owners are set whenever running as uid 0, also
    in a user namespace (owners.UnmappedOwnerError for an owner it does not map). `note`
    receives what was skipped (default: logged).
    `whiteouts` "apply" deletes what whiteouts name (a merged rootfs); "overlay" unpacks one
    layer alone into an empty `root` as an overlayfs lower directory: whiteouts become 0/0
    character devices and opaque markers the overlay opaque xattr.
    """
    if whiteouts not in ("apply", "overlay"):
        raise ValueError(f"whiteouts must be 'apply' or 'overlay', not {whiteouts!r}")
    privileged = privilege.privileged() if rootless is None else not rootless
    rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    note = note or log.warning
    state = UnpackState(root, rootfd, privileged, note, Owners(note), whiteouts == "overlay")
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tf:
            for info in tf:
                try:
                    _apply_entry(state, tf, info)
                except OSError as e:
                    # calls on descriptors name no file, or one relative to a directory
                    raise at_path(e, root / clean_entry_path(info.name)) from e
            _make_late_links(state, tf)
        _finish_directories(state)
    except tarfile.TarError as e:
        raise ImageFormatError(
            f"layer is not a valid tar archive: {e}", hint="the blob may be corrupt"
        ) from e
    finally:
        state.forget_parent()
        os.close(rootfd)
