"""ListingPrefetch with real forked walkers: the listing they send is the one walked here, a
walker that fails or is late leaves the caller to walk on its own, and none outlives close."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.prefetch import ListingPrefetch, _in_unit_order
from layerbuild.context.select import walk_context


def _context(tmp_path: Path, files: int = 50) -> Path:
    root = tmp_path / "ctx"
    for i in range(files):
        path = root / f"d{i % 7}" / f"f{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(i))
    return root


def test_walkers_send_the_listing_of_the_context(tmp_path: Path) -> None:
    root = _context(tmp_path)
    ignore = IgnoreRules.parse("d3\n")
    started = time.time_ns()
    prefetch = ListingPrefetch.start(root, ignore, walkers=3)
    try:
        listing = prefetch.get(wait=True)
    finally:
        prefetch.close()
    assert listing is not None
    assert listing.paths == walk_context(root, ignore, 0, 1)[0]
    assert not any(p.startswith("d3") for p in listing.paths)
    assert started <= listing.taken_ns <= time.time_ns()
    assert prefetch.get(wait=True) is listing  # still readable after close


def test_covers_only_the_same_root_and_rules(tmp_path: Path) -> None:
    root = _context(tmp_path)
    prefetch = ListingPrefetch.start(root, IgnoreRules.parse("d3\n"))
    prefetch.close()
    assert prefetch.covers(root, IgnoreRules.parse("d3\n", source="elsewhere"))
    assert not prefetch.covers(root, IgnoreRules.parse("d4\n"))
    assert not prefetch.covers(root, None)
    assert not prefetch.covers(tmp_path, IgnoreRules.parse("d3\n"))
    assert ListingPrefetch.start(root, None).covers(root, IgnoreRules.parse(""))


def test_a_failed_walker_means_no_listing(tmp_path: Path) -> None:
    prefetch = ListingPrefetch.start(tmp_path / "missing", None)
    assert prefetch.get(wait=True) is None
    prefetch.close()


def test_without_wait_a_busy_walker_is_not_waited_for(tmp_path: Path) -> None:
    """A walker stopped before it could send anything: `get` does not block on it, and
    close() kills and reaps it."""
    root = _context(tmp_path, files=3000)  # tens of ms to walk: stopped long before the end
    prefetch = ListingPrefetch.start(root, None, walkers=1)
    pid = prefetch._children[0][0]
    os.kill(pid, signal.SIGSTOP)
    assert prefetch.get(wait=False) is None
    prefetch.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break  # killed and reaped: no zombie either
        assert time.monotonic() < deadline, f"walker {pid} outlived close()"
        time.sleep(0.01)
    assert prefetch.get(wait=True) is None


def test_shares_go_back_in_unit_order_or_not_at_all() -> None:
    share = [(1, 1, bytes([c]), b"", b"") for c in b"abcde"]
    dealt = [[share[0], share[2], share[4]], [share[1], share[3]]]
    assert _in_unit_order(dealt, 5) == share
    with pytest.raises(ValueError, match="another number of shares"):
        _in_unit_order([[share[0], share[2]], [share[1], share[3]]], 5)


def test_two_stages_asking_at_once_get_the_one_listing(tmp_path: Path) -> None:
    """Stages run in threads: each pipe is read and closed once, whoever asks first."""
    root = _context(tmp_path, files=2000)
    for _ in range(5):
        prefetch = ListingPrefetch.start(root, None)
        got: list[object] = []

        def ask(prefetch: ListingPrefetch = prefetch, got: list[object] = got) -> None:
            got.append(prefetch.get(wait=True))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        prefetch.close()
        assert len(got) == 4 and got[0] is not None and all(g is got[0] for g in got)
