from __future__ import annotations

import errno
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import StoreError
from layerbuild.store import locking
from layerbuild.store.locking import GcRoot, live_roots, refs_lock, store_lock


def _hold(root: str, shared: bool, ready: object, release: object) -> None:
    with store_lock(Path(root), shared):
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


def _holder(tmp_path: Path, shared: bool) -> tuple[multiprocessing.process.BaseProcess, object]:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(str(tmp_path), shared, ready, release))
    p.start()
    assert ready.wait(10)
    return p, release


def test_exclusive_blocks_and_names_the_holder(tmp_path: Path) -> None:
    p, release = _holder(tmp_path, shared=False)
    try:
        start = time.monotonic()
        with pytest.raises(StoreError) as err, store_lock(tmp_path, shared=True, timeout=0.3):
            pass
        assert time.monotonic() - start >= 0.3
        assert f"store at {tmp_path} is locked by another layerbuild (pid {p.pid})" in str(
            err.value
        )
        assert "use another --root" in str(err.value)
    finally:
        release.set()  # type: ignore[attr-defined]
        p.join(10)
    with store_lock(tmp_path, timeout=1):  # free again once the holder is gone
        pass


def test_shared_holders_coexist_and_exclude_gc(tmp_path: Path) -> None:
    p, release = _holder(tmp_path, shared=True)
    try:
        with store_lock(tmp_path, shared=True, timeout=1):
            pass
        with pytest.raises(StoreError, match="locked"), store_lock(tmp_path, timeout=0.2):
            pass
        with refs_lock(tmp_path, timeout=1):  # a build holding it shared can still tag
            pass
    finally:
        release.set()  # type: ignore[attr-defined]
        p.join(10)


def test_lock_of_killed_process_is_released(tmp_path: Path) -> None:
    import signal

    p, _release = _holder(tmp_path, shared=False)
    assert p.pid is not None
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    with store_lock(tmp_path, timeout=1):
        pass


def test_gc_roots(tmp_path: Path) -> None:
    a, b = sha256_bytes(b"a"), sha256_bytes(b"b")
    with GcRoot(tmp_path, [a]) as root:
        root.add(b)
        assert live_roots(tmp_path) == {a, b}
    assert live_roots(tmp_path) == set()
    dead = tmp_path / "roots" / "999999999-abc"
    dead.write_text(f"{a}\n")
    assert live_roots(tmp_path) == set()
    assert not dead.exists()


def _read_only_fs(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.open (and mkdir) in locking.py as on a read-only mount: opening to write fails."""
    real_open = os.open

    def open_ro(path: object, flags: int, *args: int) -> int:
        if flags & (os.O_CREAT | os.O_RDWR | os.O_WRONLY):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(locking.os, "open", open_ro)


def test_shared_lock_on_a_read_only_store_still_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader of a read-only store takes the shared lock on the existing lock file opened
    read-only: an exclusive holder (gc) still keeps it out, and it keeps gc out."""
    p, release = _holder(tmp_path, shared=False)
    _read_only_fs(monkeypatch)
    try:
        with pytest.raises(StoreError, match="is locked by another"):
            with store_lock(tmp_path, shared=True, timeout=0.2):
                pass
    finally:
        release.set()  # type: ignore[attr-defined]
        p.join(10)
    with store_lock(tmp_path, shared=True):
        monkeypatch.undo()
        with pytest.raises(StoreError, match="is locked by another"):
            with store_lock(tmp_path, shared=False, timeout=0.2):
                pass


def test_writers_never_lock_without_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exclusive locks on a read-only file system fail as the file system does; only a shared
    lock whose file cannot exist (a read-only store without it) is skipped."""
    _read_only_fs(monkeypatch)
    with pytest.raises(OSError) as err, refs_lock(tmp_path):
        pass
    assert err.value.errno == errno.EROFS
    with store_lock(tmp_path, shared=True):
        assert not (tmp_path / "locks" / "store.lock").exists()
