"""One source entry of a COPY as a layer Change (engine/copysemantics.py decides where it
goes; this is what lands there): owner, mode and mtime as the COPY's flags impose them, a
symlink's target, a device's numbers, and the one xattr a layer keeps."""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from dataclasses import dataclass

from layerbuild.context.filesource import FileSource
from layerbuild.context.select import SourceFile
from layerbuild.engine.chmod import Chmod
from layerbuild.errors import ContextError
from layerbuild.image.changes import Change, ChangeKind

_CAPABILITY_XATTR = "security.capability"
_NO_XATTR = {errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP}


@dataclass(frozen=True)
class CopyMeta:
    """What the COPY flags impose on every entry."""

    chown: tuple[int, int] | None
    chmod: Chmod | None
    mtime: int | None
    preserve_owner: bool
    created_mtime: int


def entry_change(src: SourceFile, path: str, meta: CopyMeta) -> Change | None:
    """The Change that copies one source entry to layer path ``path`` (None for a socket)."""
    st = src.st
    fmt = stat.S_IFMT(st.st_mode)
    if fmt == stat.S_IFSOCK:
        return None
    if meta.chown is not None:
        uid, gid = meta.chown
    elif meta.preserve_owner:
        uid, gid = st.st_uid, st.st_gid
    else:
        uid, gid = 0, 0
    mode = stat.S_IMODE(st.st_mode)
    if meta.chmod is not None and fmt != stat.S_IFLNK:
        mode = meta.chmod.apply(mode, is_dir=fmt == stat.S_IFDIR)
    mtime = meta.mtime if meta.mtime is not None else st.st_mtime_ns // 1_000_000_000
    if fmt == stat.S_IFREG:  # the common case, built directly: replace() costs per file
        return Change(
            path,
            ChangeKind.FILE,
            mode=mode,
            uid=uid,
            gid=gid,
            size=st.st_size,
            mtime=mtime,
            xattrs=capability(src.real),
            content=FileSource(src.real, st),
        )
    base = Change(path, ChangeKind.DIR, mode=mode, uid=uid, gid=gid, mtime=mtime)
    if fmt == stat.S_IFDIR:
        return base
    if fmt == stat.S_IFLNK:
        return dataclasses.replace(base, kind=ChangeKind.SYMLINK, link=os.readlink(src.real))
    if fmt == stat.S_IFIFO:
        return dataclasses.replace(base, kind=ChangeKind.FIFO)
    return dataclasses.replace(
        base,
        kind=ChangeKind.CHARDEV if fmt == stat.S_IFCHR else ChangeKind.BLOCKDEV,
        devmajor=os.major(st.st_rdev),
        devminor=os.minor(st.st_rdev),
    )


def capability(path: str) -> tuple[tuple[str, bytes], ...]:
    """Only security.capability survives into a layer (as with BuildKit's tar writer)."""
    try:
        # listing first: most files have no xattr, and an empty list costs half the
        # ENODATA exception that getxattr raises for them
        if _CAPABILITY_XATTR not in os.listxattr(path, follow_symlinks=False):
            return ()
        value = os.getxattr(path, _CAPABILITY_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in _NO_XATTR:
            return ()
        raise ContextError(f"cannot read xattrs of {path}: {exc.strerror}") from exc
    return ((_CAPABILITY_XATTR, value),)
