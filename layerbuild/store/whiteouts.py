"""Whiteouts and opaque markers of a layer applied by unpack.py (part of its security
boundary): applied to what lower layers left, or recorded in overlayfs' lowerdir format.
"""

from __future__ import annotations

import os
import stat

from layerbuild.errors import ImageFormatError
from layerbuild.image.changes import OPAQUE_MARKER, WHITEOUT_PREFIX
from layerbuild.store.unpackwalk import DIR_FLAGS, UnpackState, lstat_at, remove_at, unsafe_entry

OVERLAY_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def _purge_lower(state: UnpackState, dirfd: int, rel: str) -> None:
    """Delete what lower layers left in directory `rel`, keeping what this layer wrote."""
    for name in os.listdir(dirfd):
        path = f"{rel}/{name}" if rel else name
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        if path not in state.created:
            remove_at(name, dirfd, st)
        elif stat.S_ISDIR(st.st_mode):
            sub = os.open(name, DIR_FLAGS, dir_fd=dirfd)
            try:
                _purge_lower(state, sub, path)
            finally:
                os.close(sub)


def _overlay_whiteout(state: UnpackState, entry: str, parent: str, target: str | None) -> None:
    """Write a whiteout (`target`) or an opaque marker (None) in overlayfs' lowerdir format:
    a 0/0 character device (which unprivileged users may create since Linux 5.8), or the
    opaque xattr on the directory: trusted.* for a root mount and user.* for a rootless
    (userxattr) one; root writes both so the snapshot serves either."""
    fd = state.open_dir(parent, entry, create=True)
    assert fd is not None
    try:
        if target is None:
            names = OVERLAY_OPAQUE_XATTRS if state.privileged else OVERLAY_OPAQUE_XATTRS[1:]
            for name in names:
                os.setxattr(fd, name, b"y")
            return
        path = f"{parent}/{target}" if parent else target
        if path in state.created or lstat_at(target, fd) is not None:
            return
        os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=fd)
    except OSError as e:
        raise ImageFormatError(
            f"layer entry {entry!r}: cannot record it for overlayfs ({e.strerror})",
            hint="overlay whiteouts need Linux >= 5.8 and a filesystem with xattrs",
        ) from e
    finally:
        os.close(fd)


def apply_whiteout(state: UnpackState, entry: str, parent: str, base: str) -> None:
    state.forget_parent()  # a whiteout may remove a directory the kept descriptor names
    if state.overlay and base == OPAQUE_MARKER:
        _overlay_whiteout(state, entry, parent, None)
        return
    if base == OPAQUE_MARKER:
        fd = state.open_dir(parent, entry, create=True)
        assert fd is not None
        try:
            _purge_lower(state, fd, parent)
        finally:
            os.close(fd)
        return
    target = base[len(WHITEOUT_PREFIX) :]
    if target.startswith(WHITEOUT_PREFIX):
        # AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): meaningless outside AUFS
        state.note(f"{entry}: AUFS metadata entry skipped")
        return
    if target in ("", ".", ".."):
        raise unsafe_entry(entry, f"whiteout of {target!r} is not a file name")
    if state.overlay:
        _overlay_whiteout(state, entry, parent, target)
        return
    path = f"{parent}/{target}" if parent else target
    if path in state.created:
        return  # whiteouts hide lower layers only
    fd = state.open_dir(parent, entry, create=False)
    if fd is None:
        return
    try:
        remove_at(target, fd)
    finally:
        os.close(fd)
