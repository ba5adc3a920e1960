"""The copy snapshotter: for hosts where neither overlayfs nor fuse-overlayfs can be mounted.

`merge_lowers` copies the merged view of the lower directories (top-most first, in overlayfs
lowerdir format: 0/0 character-device whiteouts, opaque xattrs) into a fresh directory, which
the sandbox bind-mounts as the rootfs. It returns what every entry looked like right after the
copy (inode number and ctime). After the step `diff_into_upper` writes what changed into the
step's upper dir *in overlayfs' upper format*, so the rest of the pipeline (overlaydiff,
LayerSnapshots.commit_upper) cannot tell the snapshotters apart:

- a path that is new, or whose inode changed (replaced: written to a new file and renamed,
  deleted and recreated), is exported whole; a directory replaced that way is marked opaque;
- a path with the same inode but another ctime had its content or metadata changed (the
  kernel updates ctime on every write, chmod, chown, xattr change or rename, and no caller can
  set it back), so it is exported too: that is what a copy-up does;
- a path gone from a directory that still exists becomes a 0/0 whiteout (unprivileged users
  may create those since Linux 5.8).

Exported non-directories are hard links into the working copy (same filesystem, no data is
copied twice; files hard-linked to each other stay so); the copy itself is removed afterwards.
The cost is a full copy of the image per step, which is why this is the last fallback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_OPAQUE = ("trusted.overlay.opaque", "user.overlay.opaque")
_WHITEOUT_XATTRS = ("trusted.overlay.whiteout", "user.overlay.whiteout")


@dataclass(frozen=True, slots=True)
class Seen:
    """An entry of the working copy before the step ran."""

    ino: int
    ctime_ns: int
    is_dir: bool
    size: int = 0
    mtime_ns: int = 0

    def same(self, st: os.stat_result) -> bool:
        """Unchanged since: same inode, ctime, size and mtime (ctime alone has the kernel's
        coarse clock tick as its resolution)."""
        return (self.ino, self.ctime_ns, self.size, self.mtime_ns) == (
            st.st_ino,
            st.st_ctime_ns,
            st.st_size,
            st.st_mtime_ns,
        )


Before = dict[str, dict[str, Seen]]  # directory (relative, "" for the root) -> name -> entry


def merge_lowers(lowers: Sequence[Path], dest: Path) -> Before:
    """Copy the merged view of `lowers` (top-most first) into the new directory `dest`."""
    merger = _Merger(dest)
    dest.mkdir()
    for index, lower in enumerate(lowers):
        merger.layer(str(lower), index)
    if lowers:
        merger.attrs(str(lowers[0]), str(dest), os.lstat(lowers[0]))
    for src, dst, st in reversed(merger.dirs):
        merger.attrs(src, dst, st)
    return snapshot(dest)


def snapshot(root: Path) -> Before:
    """Inode and ctime of every entry below `root`."""
    seen: Before = {}
    pending = [""]
    while pending:
        rel = pending.pop()
        entries: dict[str, Seen] = {}
        with os.scandir(os.path.join(root, rel)) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                is_dir = stat.S_ISDIR(st.st_mode)
                entries[entry.name] = Seen(
                    st.st_ino, st.st_ctime_ns, is_dir, st.st_size, st.st_mtime_ns
                )
                if is_dir:
                    pending.append(f"{rel}/{entry.name}" if rel else entry.name)
        seen[rel] = entries
    return seen


class _Merger:
    def __init__(self, dest: Path) -> None:
        self.dest = str(dest)
        self.masked: set[str] = set()  # whiteouts of upper layers
        self.opaque: set[str] = set()  # directories whose lower contents are hidden
        self.links: dict[tuple[int, int], str] = {}
        self.dirs: list[tuple[str, str, os.stat_result]] = []  # attributes set last

    def layer(self, lower: str, index: int) -> None:
        self.walk(lower, "", index)

    def walk(self, lower: str, rel: str, index: int) -> None:
        masked_here: list[str] = []
        for name in sorted(os.listdir(os.path.join(lower, rel))):
            path = f"{rel}/{name}" if rel else name
            if path in self.masked:
                continue
            src, dst = os.path.join(lower, path), os.path.join(self.dest, path)
            st = os.lstat(src)
            if _is_whiteout(src, st):
                masked_here.append(path)
                continue
            exists = os.path.lexists(dst)
            if stat.S_ISDIR(st.st_mode):
                if not exists:
                    os.mkdir(dst, 0o700)
                    self.dirs.append((src, dst, st))
                elif not os.path.isdir(dst) or os.path.islink(dst):
                    continue  # an upper non-directory hides this one
                if path not in self.opaque:
                    self.walk(lower, path, index)
                if _xattr(src, _OPAQUE):
                    self.opaque.add(path)
            elif not exists:
                self.copy(src, dst, st, index)
        self.masked.update(masked_here)  # they hide lower layers only, not this one

    def copy(self, src: str, dst: str, st: os.stat_result, index: int) -> None:
        key = (index, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            os.link(self.links[key], dst, follow_symlinks=False)
            return
        if copy_entry(src, dst, st) and st.st_nlink > 1:
            self.links[key] = dst

    def attrs(self, src: str, dst: str, st: os.stat_result) -> None:
        copy_attrs(src, dst, st)


def copy_entry(src: str, dst: str, st: os.stat_result) -> bool:
    """Copy one non-directory with its attributes; False for a socket (left out)."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        shutil.copyfile(src, dst)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dst, 0o600)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        os.mknod(dst, stat.S_IFMT(mode) | 0o600, st.st_rdev)
    else:
        return False  # sockets do not belong in an image
    copy_attrs(src, dst, st)
    return True


def copy_attrs(src: str, dst: str, st: os.stat_result) -> None:
    """Owner, mode, xattrs (not overlay's own) and times of `src` onto `dst`, in the order
    that keeps them all (chown clears setuid bits and file capabilities)."""
    link = stat.S_ISLNK(st.st_mode)
    try:
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    except OSError as e:
        # in a user namespace: an owner it does not map (shown as 65534, EINVAL to set), or
        # a file whose current owner it does not map (EPERM); the copy then stays root's
        if e.errno not in (errno.EPERM, errno.EINVAL):
            raise
    if not link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    for name in _listxattr(src):
        if ".overlay." in name:
            continue
        with contextlib.suppress(OSError):
            os.setxattr(
                dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False
            )
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _listxattr(path: str) -> list[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []


def _xattr(path: str, names: Sequence[str]) -> bool:
    for name in names:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _is_whiteout(path: str, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    if not stat.S_ISREG(st.st_mode) or st.st_size:
        return False
    return any(name in _listxattr(path) for name in _WHITEOUT_XATTRS)


def diff_into_upper(root: Path, before: Before, upper: Path, *, privileged: bool) -> None:
    """Write what changed in `root` since `before` into the empty `upper` (overlay format)."""
    differ = _Differ(str(root), str(upper), before, privileged)
    differ.directory("")
    differ.finish()


class _Differ:
    def __init__(self, root: str, upper: str, before: Before, privileged: bool) -> None:
        self.root = root
        self.upper = upper
        self.before = before
        self.opaque_xattr = _OPAQUE[0] if privileged else _OPAQUE[1]
        self.made: list[str] = []  # upper directories whose attributes are set at the end

    def directory(self, rel: str) -> bool:
        """Export what changed below `rel`; whether anything did."""
        old = self.before.get(rel, {})
        changed = False
        with os.scandir(os.path.join(self.root, rel)) as it:
            now = {e.name: e.stat(follow_symlinks=False) for e in it}
        for name in sorted(now):
            path = f"{rel}/{name}" if rel else name
            st, prev = now[name], old.get(name)
            is_dir = stat.S_ISDIR(st.st_mode)
            if prev is None or prev.ino != st.st_ino or prev.is_dir != is_dir:
                self.export(path, st, opaque=is_dir and prev is not None and prev.is_dir)
                changed = True
            elif is_dir and self.recreated(path, now_names=os.listdir(self.host(path))):
                self.export(path, st, opaque=True)
                changed = True
            elif is_dir:
                below = self.directory(path)
                if not prev.same(st) and not below:
                    self.ensure_dir(path)
                changed |= below or not prev.same(st)
            elif not prev.same(st):
                self.export(path, st, opaque=False)
                changed = True
        for name in sorted(old.keys() - now.keys()):
            self.ensure_dir(rel)
            target = os.path.join(self.upper, rel, name)
            os.mknod(target, stat.S_IFCHR, os.makedev(0, 0))
            changed = True
        return changed

    def host(self, path: str) -> str:
        return os.path.join(self.root, path)

    def recreated(self, path: str, now_names: list[str]) -> bool:
        """A directory whose every former entry is gone or replaced: deleted and made again
        (the inode number of a deleted directory is often reused at once). Exporting it whole
        and opaque gives exactly the tree the command left, as a `rm -rf d; mkdir d` would."""
        old = self.before.get(path, {})
        if not old or not now_names:
            return False  # emptied, not replaced: whiteouts say the same, and less
        for name in now_names:
            prev = old.get(name)
            if prev is not None and prev.ino == os.lstat(self.host(f"{path}/{name}")).st_ino:
                return False
        return True

    def ensure_dir(self, rel: str) -> None:
        """Create `rel` and its parents in the upper dir (attributes set by `finish`)."""
        parts = rel.split("/") if rel else []
        for depth in range(len(parts) + 1):
            sub = "/".join(parts[:depth])
            target = os.path.join(self.upper, sub)
            if sub and not os.path.lexists(target):
                os.mkdir(target, 0o700)
                self.made.append(sub)
            elif not sub and "" not in self.made:
                self.made.append("")

    def export(self, path: str, st: os.stat_result, *, opaque: bool) -> None:
        self.ensure_dir(os.path.dirname(path))
        src, dst = os.path.join(self.root, path), os.path.join(self.upper, path)
        if not stat.S_ISDIR(st.st_mode):
            try:
                os.link(src, dst, follow_symlinks=False)
            except PermissionError:
                # fs.protected_hardlinks: an unprivileged caller may not link others' files
                copy_entry(src, dst, st)
            return
        os.mkdir(dst, 0o700)
        self.made.append(path)
        if opaque:
            os.setxattr(dst, self.opaque_xattr, b"y")
        for name in sorted(os.listdir(src)):
            child = f"{path}/{name}"
            self.export(child, os.lstat(os.path.join(self.root, child)), opaque=False)

    def finish(self) -> None:
        for rel in sorted(set(self.made), key=lambda p: p.count("/") + bool(p), reverse=True):
            src = os.path.join(self.root, rel)
            copy_attrs(src, os.path.join(self.upper, rel), os.lstat(src))
