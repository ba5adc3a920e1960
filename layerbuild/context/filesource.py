"""FileSource: the content of a context file, opened when a layer is packed.

A COPY selects its files (and lstats them) long before the tar writer reads them, and the tar
header promises the size seen at selection. FileSource reopens the file without following a
symlink, refuses a file that was swapped for another inode in between, and yields exactly the
promised number of bytes or fails: a file that grew or shrank would otherwise produce a tar
whose header and data disagree.

Being a value (path + lstat) rather than a closure, it also tells the content hasher which file
a Change reads, so the stat cache can vouch for it instead of re-reading it. ``hash_file`` and
``hash_files`` compute such a file's sha256 under the same guards, in parallel where it pays.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

from layerbuild.context.lstat import Stat
from layerbuild.digest import Digest
from layerbuild.errors import ContextError
from layerbuild.hosterrors import os_hint

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHANGED_HINT = "do not change the build context while a build runs"
READ_SIZE = 1 << 20
# Files this large are hashed in the thread pool: reading and hashing 256 KiB (~150 us) is
# well above the cost of a thread hop; below that, the per-file Python work dominates and
# threads only contend for the GIL (measured in bench/hash_bench.py).
_PARALLEL_MIN = 256 << 10
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK

# a file's location: a str where a Path per file would cost (big COPYs), else a Path
FilePath = str | Path


@dataclass(frozen=True, slots=True)
class FileSource:
    """``Change.content`` for a regular file read from disk; ``st`` is its lstat at selection."""

    path: FilePath
    st: Stat

    def __call__(self) -> BinaryIO:
        return io.BufferedReader(SizeGuard(self._open(), self.st.st_size, self.path))

    def chunks(self, size: int, *, settled: bool = False) -> Generator[bytes, None, None]:
        """The file's bytes in pieces of at most ``size``, exactly ``st.st_size`` in all.

        The tar writer's fast path: no file object per file, and a file that fits one piece
        costs a single read, which asks for one byte more than promised to see growth.
        ContextError as with ``__call__`` when the file was replaced, grew or shrank; with
        `settled`, also when its size, mtime or ctime after the read are not those of ``st``
        (any write moves ctime, so the bytes read are the ones ``st`` was hashed with, if the
        file was not written in the same timestamp tick: the caller's racy rule).
        """
        fd = self._open()
        try:
            left = self.st.st_size
            end_seen = False  # whether the last read asked past the promised end
            while left > 0:
                end_seen = left < size
                data = os.read(fd, left + 1 if end_seen else size)
                if not data:
                    _changed(self.path, "shrank")
                if len(data) > left:
                    _changed(self.path, "grew")
                left -= len(data)
                yield data
            if not end_seen and os.read(fd, 1):
                _changed(self.path, "grew")
            if settled:
                now = os.fstat(fd)
                if (now.st_size, now.st_mtime_ns, now.st_ctime_ns) != (
                    self.st.st_size,
                    self.st.st_mtime_ns,
                    self.st.st_ctime_ns,
                ):
                    _changed(self.path, "was modified")
        finally:
            os.close(fd)

    def _open(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise ContextError(
                f"cannot open {self.path} for COPY: {exc.strerror}",
                hint=os_hint(exc) or CHANGED_HINT,
            ) from exc
        now_st = os.fstat(fd)
        if (now_st.st_dev, now_st.st_ino) != (self.st.st_dev, self.st.st_ino):
            os.close(fd)
            raise ContextError(
                f"{self.path} was replaced while the build was copying it", hint=CHANGED_HINT
            )
        return fd


class SizeGuard(io.RawIOBase):
    """Yields exactly ``size`` bytes from ``fd`` (which it owns), or fails loudly."""

    def __init__(self, fd: int, size: int, path: FilePath) -> None:
        self._fd = fd
        self._left = size
        self._path = path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._left == 0:
            if os.read(self._fd, 1):
                _changed(self._path, "grew")
            return 0
        data = os.read(self._fd, min(len(view), self._left))
        if not data:
            _changed(self._path, "shrank")
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def _changed(path: FilePath, how: str) -> NoReturn:
    raise ContextError(f"{path} {how} while the build was copying it", hint=CHANGED_HINT)


@dataclass(frozen=True, slots=True)
class FileDigest:
    """The sha256 of a file and its fstat just before reading it.

    ``stable`` is False when the file's size or times moved while it was being read: the digest
    is of whatever was read and must not be remembered for that stat.
    """

    digest: Digest
    st: Stat
    stable: bool


def hash_file(path: FilePath, st: Stat) -> FileDigest:
    """sha256 of the regular file ``path`` that was lstat'ed as ``st``.

    ContextError if it is gone, is no longer that inode (or no longer a regular file), or
    changed size since ``st`` or while being read. O_NONBLOCK keeps a FIFO swapped in from
    blocking the open; it does not affect reads of regular files.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise ContextError(
            f"cannot read {path}: {exc.strerror}", hint=os_hint(exc) or CHANGED_HINT
        ) from exc
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode) or (before.st_dev, before.st_ino) != (
            st.st_dev,
            st.st_ino,
        ):
            raise ContextError(
                f"{path} was replaced while the build was reading it", hint=CHANGED_HINT
            )
        if before.st_size != st.st_size:
            raise ContextError(
                f"{path} changed size while the build was reading it", hint=CHANGED_HINT
            )
        digest = _read_digest(fd, before.st_size, path)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if after.st_size != before.st_size:
        raise ContextError(
            f"{path} changed size while the build was reading it", hint=CHANGED_HINT
        )
    stable = (after.st_mtime_ns, after.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns)
    return FileDigest(digest, before, stable)


def _read_digest(fd: int, size: int, path: FilePath) -> Digest:
    h = hashlib.sha256()
    buf = bytearray(max(1, min(size, READ_SIZE)))
    view = memoryview(buf)
    left = size
    while left > 0:
        n = os.readv(fd, [view[: min(left, len(buf))]])
        if n == 0:
            raise ContextError(f"{path} shrank while the build was reading it", hint=CHANGED_HINT)
        h.update(view[:n])  # hashlib drops the GIL for updates of 2 KiB and more
        left -= n
    if os.read(fd, 1):
        raise ContextError(f"{path} grew while the build was reading it", hint=CHANGED_HINT)
    return Digest.from_hash(h)


def hash_files(
    items: Sequence[tuple[FilePath, Stat]], *, workers: int | None = None
) -> list[FileDigest]:
    """``hash_file`` of each item, in order.

    Files of _PARALLEL_MIN bytes and more go to a pool of ``workers`` threads (reads and
    sha256 updates drop the GIL); smaller ones are hashed by the calling thread meanwhile,
    since for them the Python per-file work, which holds the GIL, outweighs the hashing.
    """
    workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    large = [i for i, (_, st) in enumerate(items) if st.st_size >= _PARALLEL_MIN]
    if workers < 2 or not large:
        return [hash_file(path, st) for path, st in items]
    from concurrent.futures import ThreadPoolExecutor  # here: a no-change build never needs it

    out: list[FileDigest | None] = [None] * len(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash") as pool:
        futures = [(i, pool.submit(hash_file, *items[i])) for i in large]
        pending = set(large)
        for i, (path, st) in enumerate(items):
            if i not in pending:
                out[i] = hash_file(path, st)
        for i, future in futures:
            out[i] = future.result()
    return [result for result in out if result is not None]
