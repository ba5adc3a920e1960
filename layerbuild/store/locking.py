"""Locks of the store (flock) and the GC roots of running builds.

Two lock files, always taken in this order so that no two processes can wait on each other:

- ``locks/store.lock``: builds hold it *shared* while they run, so that gc, which takes it
  *exclusive*, never deletes blobs or snapshots a build is using or has just written.
- ``locks/refs.lock``: exclusive around every read-modify-write of ``index.json``. It is separate
  because a build that holds the store lock shared must still be able to tag its result: with a
  single lock, two builds each holding it shared and each upgrading to exclusive would deadlock.

flock locks belong to an open file and vanish when the process dies, so a killed build never
leaves the store locked. The pid in error messages comes from /proc/locks.

GC roots (``roots/<pid>-<random>``) list digests a live process wants kept even though no tag
refers to them yet; gc ignores the files of dead pids and deletes them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from layerbuild.digest import Digest, is_digest
from layerbuild.errors import StoreError
from layerbuild.store.crashsafe import pid_alive

DEFAULT_TIMEOUT = 30.0
_POLL = 0.05


def _holder_pid(fd: int) -> int | None:
    """The pid holding a flock on the file of `fd`, from /proc/locks (None when unknown)."""
    st = os.fstat(fd)
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; blocked waiters have "->" in field 1
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
            if fields[4].isdigit() and int(fields[4]) != os.getpid():
                return int(fields[4])
    return None


def _open_lock(path: Path, *, shared: bool) -> int | None:
    """The lock file's descriptor; None for a shared lock on a read-only store that has none.

    flock works on a descriptor opened read-only, so a reader of a read-only store (or of a
    store whose lock files it may not write) still takes the same shared lock as everyone
    else. Only when the file cannot exist (a read-only file system without it) is there no
    lock to take, and nothing to guard against: no other process can write that store either.
    Exclusive locks (writers) never go without one.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if not shared or e.errno not in (errno.EROFS, errno.EACCES):
            raise
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if e.errno == errno.EROFS:
                return None
            raise e from None


@contextlib.contextmanager
def _flock(path: Path, store_root: Path, *, shared: bool, timeout: float) -> Iterator[None]:
    fd = _open_lock(path, shared=shared)
    if fd is None:
        yield
        return
    try:
        op = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, op)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() >= deadline:
                    pid = _holder_pid(fd)
                    who = f"pid {pid}" if pid is not None else "pid unknown"
                    raise StoreError(
                        f"store at {store_root} is locked by another layerbuild ({who}); "
                        "wait or use another --root",
                        hint=f"waited {timeout:g}s for {path.name}",
                    ) from None
                time.sleep(_POLL)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def store_lock(
    root: Path, shared: bool = False, *, timeout: float = DEFAULT_TIMEOUT
) -> contextlib.AbstractContextManager[None]:
    """The store-wide lock: shared for running builds, exclusive for gc."""
    return _flock(root / "locks" / "store.lock", root, shared=shared, timeout=timeout)


def refs_lock(
    root: Path, *, timeout: float = DEFAULT_TIMEOUT
) -> contextlib.AbstractContextManager[None]:
    """Exclusive lock around index.json updates (taken after store_lock, never before)."""
    return _flock(root / "locks" / "refs.lock", root, shared=False, timeout=timeout)


class GcRoot:
    """Digests a running process keeps alive; a context manager that removes its file on exit."""

    def __init__(self, root: Path, digests: Iterable[Digest] = ()) -> None:
        roots_dir = root / "roots"
        roots_dir.mkdir(parents=True, exist_ok=True)
        self.path = roots_dir / f"{os.getpid()}-{os.urandom(6).hex()}"
        self.path.touch(mode=0o644, exist_ok=False)
        self.add(*digests)

    def add(self, *digests: Digest) -> None:
        if not digests:
            return
        with open(self.path, "a", encoding="ascii") as f:
            f.write("".join(f"{d}\n" for d in digests))
            f.flush()
            os.fsync(f.fileno())

    def release(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> GcRoot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def live_roots(root: Path) -> set[Digest]:
    """Digests named by GC roots of live processes; root files of dead pids are deleted."""
    roots_dir = root / "roots"
    out: set[Digest] = set()
    if not roots_dir.is_dir():
        return out
    for entry in os.scandir(roots_dir):
        pid_text = entry.name.partition("-")[0]
        if not pid_text.isdigit() or not pid_alive(int(pid_text)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
            continue
        with contextlib.suppress(FileNotFoundError):
            text = Path(entry.path).read_text(encoding="ascii", errors="replace")
            out.update(Digest(line) for line in text.split() if is_digest(line))
    return out
