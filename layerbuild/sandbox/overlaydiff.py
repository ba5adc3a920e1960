"""Read an overlay upper directory back as the Changes of a layer.

The upper dir of a RUN step holds exactly what the command changed, in overlayfs' own format
(linux Documentation/filesystems/overlayfs.rst, "whiteouts and opaque directories"):

- a deleted entry is a character device 0/0 (or, in the kernel's newer rootless form, an
  empty file carrying the ``*.overlay.whiteout`` xattr) → WHITEOUT;
- a directory whose lower contents are hidden (``rm -rf d && mkdir d``) carries
  ``trusted.overlay.opaque=y``, or ``user.overlay.opaque=y`` when mounted with ``userxattr``
  as rootless overlay is (moby/moby#42662) → DIR plus OPAQUE;
- everything else is there because it was created, written or had its metadata changed (a
  chmod or chown copies the file up, so it appears here with its new attributes).

Overlay bookkeeping xattrs (``trusted.overlay.*``, ``user.overlay.*``) never reach a Change.
A directory that overlay merely copied up on the way to a change below it is still a parent of
that change and is emitted as such (containerd does the same); given `lowerdirs`, a directory
whose attributes equal the lower one and below which nothing changed is left out, which is what
remains after the sandbox removed its mount points from the upper dir.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from layerbuild.image.changes import Change, ChangeKind, Opener

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque")
_WHITEOUT_XATTRS = ("trusted.overlay.whiteout", "user.overlay.whiteout")
_OVERLAY_PREFIXES = ("trusted.overlay.", "user.overlay.", "user.fuseoverlayfs.")
# fuse-overlayfs (when it cannot mknod or set trusted.* xattrs, and for every directory it
# creates) marks whiteouts and opaque directories with AUFS-style files, as in a layer tar
_WH = ".wh."
_OPQ = ".wh..wh..opq"
_OPQ_MARKERS = (_OPQ, ".wh..opq")  # fuse-overlayfs writes both (the second as a 0/0 device)


def overlay_changes(
    upperdir: Path,
    *,
    lowerdirs: Sequence[Path] = (),
) -> Iterator[Change]:
    """The Changes recorded in `upperdir`, in layer order (parents first, siblings sorted).

    `lowerdirs` (top-most first) lets unchanged copied-up directories be left out. Owners are
    read as this process sees them: a rootless build reads them inside its user namespace,
    where they already are the container's ids (sandbox/userns.py).
    """
    walker = _Walker(str(upperdir), [str(p) for p in lowerdirs])
    yield from walker.directory("")


class _Walker:
    def __init__(self, root: str, lowers: list[str]) -> None:
        self.root = root
        self.lowers = lowers
        self.first_link: dict[tuple[int, int], str] = {}

    def directory(self, rel: str) -> list[Change]:
        """Changes of the entries of directory `rel` (not of `rel` itself)."""
        out: list[Change] = []
        host = os.path.join(self.root, rel)
        for name in sorted(os.listdir(host)):
            path = f"{rel}/{name}" if rel else name
            if name in _OPQ_MARKERS:
                continue  # read by dir_entry
            if name.startswith(_WH):
                out.append(Change(path[: -len(name)] + name[len(_WH) :], ChangeKind.WHITEOUT))
                continue
            out += self.entry(path, os.lstat(os.path.join(self.root, path)))
        return (
            sorted(out, key=_sort_key) if any(n.startswith(_WH) for n in os.listdir(host)) else out
        )

    def entry(self, path: str, st: os.stat_result) -> list[Change]:
        host = os.path.join(self.root, path)
        xattrs = _xattrs(host)
        if _is_whiteout(st, xattrs):
            return [Change(path, ChangeKind.WHITEOUT)]
        kind = _kind(st)
        if kind is ChangeKind.DIR:
            return self.dir_entry(path, st, xattrs)
        change = self.change(path, st, kind, xattrs)
        if kind is ChangeKind.FILE and st.st_nlink > 1:
            first = self.first_link.setdefault((st.st_dev, st.st_ino), path)
            if first != path:
                return [
                    Change(
                        path,
                        ChangeKind.HARDLINK,
                        link=first,
                        mode=change.mode,
                        uid=change.uid,
                        gid=change.gid,
                        mtime=change.mtime,
                    )
                ]
        return [change]

    def dir_entry(self, path: str, st: os.stat_result, xattrs: dict[str, bytes]) -> list[Change]:
        opaque = any(xattrs.get(name) == b"y" for name in _OPAQUE_XATTRS)
        opaque |= any(os.path.lexists(os.path.join(self.root, path, m)) for m in _OPQ_MARKERS)
        # fuse-overlayfs marks every directory it creates opaque: only an opaque marker that
        # hides a lower directory means anything in a layer
        opaque &= not self.lowers or self.in_lower(path)
        change = self.change(path, st, ChangeKind.DIR, xattrs)
        below = self.directory(path)
        if opaque:
            return [change, Change(path, ChangeKind.OPAQUE), *below]
        if not below and self.same_as_lower(path, change):
            return []
        return [change, *below]

    def change(
        self, path: str, st: os.stat_result, kind: ChangeKind, xattrs: dict[str, bytes]
    ) -> Change:
        host = os.path.join(self.root, path)
        return Change(
            path,
            kind,
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            size=st.st_size if kind is ChangeKind.FILE else 0,
            mtime=int(st.st_mtime),
            link=os.readlink(host) if kind is ChangeKind.SYMLINK else "",
            devmajor=os.major(st.st_rdev) if kind in _DEVICES else 0,
            devminor=os.minor(st.st_rdev) if kind in _DEVICES else 0,
            xattrs=tuple(sorted(_layer_xattrs(xattrs).items())),
            content=_opener(host) if kind is ChangeKind.FILE else None,
        )

    def in_lower(self, path: str) -> bool:
        return any(os.path.isdir(os.path.join(lower, path)) for lower in self.lowers)

    def same_as_lower(self, path: str, change: Change) -> bool:
        """True when the first lower with `path` has it as a directory with equal attributes."""
        for lower in self.lowers:
            host = os.path.join(lower, path)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(st.st_mode):
                return False
            theirs = self.change(path, st, ChangeKind.DIR, _xattrs(host))
            return (change.mode, change.uid, change.gid, change.mtime, change.xattrs) == (
                theirs.mode,
                theirs.uid,
                theirs.gid,
                theirs.mtime,
                theirs.xattrs,
            )
        return False


_DEVICES = (ChangeKind.CHARDEV, ChangeKind.BLOCKDEV)


def _sort_key(change: Change) -> str:
    return change.path


def _kind(st: os.stat_result) -> ChangeKind:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return ChangeKind.FILE
    if stat.S_ISDIR(mode):
        return ChangeKind.DIR
    if stat.S_ISLNK(mode):
        return ChangeKind.SYMLINK
    if stat.S_ISFIFO(mode):
        return ChangeKind.FIFO
    if stat.S_ISCHR(mode):
        return ChangeKind.CHARDEV
    if stat.S_ISBLK(mode):
        return ChangeKind.BLOCKDEV
    raise ValueError(f"unsupported file type {stat.S_IFMT(mode):o}")  # a socket in a layer


def _is_whiteout(st: os.stat_result, xattrs: dict[str, bytes]) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_size == 0
        and any(name in xattrs for name in _WHITEOUT_XATTRS)
    )


def _xattrs(host: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(host, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        try:
            out[name] = os.getxattr(host, name, follow_symlinks=False)
        except OSError:
            continue  # e.g. trusted.* unreadable to an unprivileged caller
    return out


def _layer_xattrs(xattrs: dict[str, bytes]) -> dict[str, bytes]:
    """The xattrs a layer keeps: file capabilities and user.*, never overlay's own."""
    return {
        name: value
        for name, value in xattrs.items()
        if (name == "security.capability" or name.startswith("user."))
        and not name.startswith(_OVERLAY_PREFIXES)
    }


def _opener(host: str) -> Opener:
    def open_file() -> BinaryIO:
        return open(host, "rb")

    return open_file
