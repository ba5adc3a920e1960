"""The walk of a layer's paths inside the root it is applied to, never through a symlink: part
of the security boundary of unpack.py (whose docstring says what is refused and why).
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from layerbuild.errors import ImageFormatError, UnsafeArchiveError
from layerbuild.store.owners import Owners

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def clean_entry_path(name: str) -> str:
    """The layer path of a tar entry name ('' for the root); UnsafeArchiveError if it escapes."""
    stripped = name.lstrip("/")
    cleaned = posixpath.normpath(stripped) if stripped else "."
    if cleaned == ".." or cleaned.startswith("../"):
        raise UnsafeArchiveError(
            f"layer entry {name!r} points outside the image root",
            hint="the layer is malformed or hostile (tar-slip); do not use this image",
        )
    return "" if cleaned == "." else cleaned


def unsafe_entry(name: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"layer entry {name!r} refused: {why}",
        hint="the layer is malformed or hostile; do not use this image",
    )


@dataclass
class UnpackState:
    root: Path
    rootfd: int
    privileged: bool  # real root: device nodes, trusted.* xattrs
    note: Callable[[str], None]
    owners: Owners
    overlay: bool = False  # whiteouts="overlay": record them for overlayfs, do not apply
    created: set[str] = field(default_factory=set)  # layer paths this layer wrote
    dir_meta: dict[str, tarfile.TarInfo] = field(default_factory=dict)
    parent: tuple[str, int] | None = None  # (path, fd) of the directory walked last
    # hard links met before their target, made at the end of the layer (_make_late_links)
    late_links: list[tarfile.TarInfo] | None = field(default_factory=list)

    def forget_dirs(self, path: str) -> None:
        """Drop pending directory metadata of `path` and below: they were just removed."""
        prefix = path + "/"
        for key in [k for k in self.dir_meta if k == path or k.startswith(prefix)]:
            del self.dir_meta[key]

    def open_dir(self, rel: str, entry: str, *, create: bool) -> int | None:
        """A descriptor of directory `rel` walked without following symlinks.

        Missing components are made (0o755) when `create`, else None is returned. The last
        directory walked is kept open: layer entries come parents first and siblings together,
        so most entries reuse it instead of walking from the root again. Anything this layer
        removes drops it (`forget_parent`), so a kept descriptor never names a replaced dir.
        """
        if self.parent is not None and self.parent[0] == rel:
            return os.dup(self.parent[1])
        fd = self._walk(rel, entry, create=create)
        if fd is not None:
            self.forget_parent()
            self.parent = (rel, os.dup(fd))
        return fd

    def forget_parent(self) -> None:
        if self.parent is not None:
            os.close(self.parent[1])
            self.parent = None

    def _walk(self, rel: str, entry: str, *, create: bool) -> int | None:
        fd = os.dup(self.rootfd)
        walked = ""
        try:
            for part in rel.split("/") if rel else ():
                walked = f"{walked}/{part}" if walked else part
                try:
                    nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    os.mkdir(part, 0o755, dir_fd=fd)
                    self.created.add(walked)
                    nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    self._refuse_parent(fd, part, walked, entry)
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _refuse_parent(self, fd: int, part: str, walked: str, entry: str) -> None:
        st = os.stat(part, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise unsafe_entry(entry, f"its parent {walked!r} is a symlink")
        raise ImageFormatError(
            f"layer entry {entry!r}: parent {walked!r} exists and is not a directory",
            hint="the layer does not fit on top of the layers below it",
        )


def lstat_at(name: str, dirfd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_at(name: str, dirfd: int, st: os.stat_result | None = None) -> None:
    """Remove `name` in `dirfd` whatever it is (fd-relative rmtree never follows symlinks)."""
    st = st if st is not None else lstat_at(name, dirfd)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dirfd)
    else:
        os.unlink(name, dir_fd=dirfd)
