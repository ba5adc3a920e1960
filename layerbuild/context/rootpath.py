"""Read one file by its path inside a root, every symlink resolved as a chroot would.

The build reads a few files from the context by name before any COPY: `.dockerignore`,
`<Dockerfile>.dockerignore` and the Dockerfile. BuildKit reads them from a snapshot of the
context and resolves the name there with containerd's `fs.RootPath` (moby/buildkit
cache/util/fsutil.go `ReadFile`): an absolute link target restarts at the root, `..` stops
at it, and a target that would leave the root names a path inside it instead. So a
`.dockerignore -> /etc/passwd` link never reads the host's `/etc/passwd`.

The walk goes component by component from a descriptor of the root, each step opened with
O_NOFOLLOW relative to its parent's descriptor (openat), so a component swapped for a
symlink while we walk cannot lead outside the root either. Link targets are cleaned
lexically against the directory that holds the link, as `fs.RootPath` does.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat

_MAX_LINKS = 255  # fs.RootPath's limit
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO put where a file was expected must not hang the open
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
# what makes a name not resolve to a file: absent, dangling, through a non-directory, a loop
_ABSENT = {errno.ENOENT, errno.ENOTDIR, errno.ELOOP}


def read_in_root(root: str | os.PathLike[str], path: str) -> bytes | None:
    """The bytes of the regular file `path` names inside `root` (which itself may be reached
    through symlinks: the caller named it). None when there is no regular file there: it is
    absent, a dangling link, a link loop, or not a regular file. Other OSErrors (permission,
    I/O) propagate."""
    try:
        fd = _open_in_root(os.fspath(root), path)
    except OSError as exc:
        if exc.errno in _ABSENT:
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _open_in_root(root: str, path: str) -> int:
    """A descriptor of the file `path` names under `root` (see the module docstring)."""
    dirs = [os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    names: list[str] = []  # the root-relative path of dirs[-1], one name per deeper dir
    pending = _parts(path)
    links = 0
    try:
        while pending:
            name = pending.pop(0)
            st = os.stat(name, dir_fd=dirs[-1], follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                target = os.readlink(name, dir_fd=dirs[-1])
                base = "" if target.startswith("/") else "/".join(names)
                while len(dirs) > 1:
                    os.close(dirs.pop())
                names.clear()
                pending = _parts(posixpath.join(base, target)) + pending
            elif pending:
                dirs.append(os.open(name, _DIR_FLAGS, dir_fd=dirs[-1]))
                names.append(name)
            else:
                return os.open(name, _FILE_FLAGS, dir_fd=dirs[-1])
        return os.dup(dirs[-1])  # the path names the root itself
    finally:
        for fd in dirs:
            os.close(fd)


def _parts(path: str) -> list[str]:
    """`path` cleaned lexically and clamped at the root: `..` cannot climb above it."""
    clean = posixpath.normpath("/" + path)
    return [p for p in clean.split("/") if p]
