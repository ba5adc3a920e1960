from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.errors import StoreError
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
