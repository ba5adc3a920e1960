"""call_in_child with real forks: results come back, failures and cancels are reported, and
no child is left behind."""

from __future__ import annotations

import os
import threading
import time

import pytest

from layerbuild.childcall import call_in_child
from layerbuild.errors import ChildFailed


def test_the_result_comes_back_from_another_process() -> None:
    parent = os.getpid()
    future = call_in_child(lambda: (os.getpid(), {"k": [1, b"x"]}))
    pid, value = future.result(timeout=30)
    assert pid != parent and value == {"k": [1, b"x"]}


def test_a_big_result_is_not_cut() -> None:
    future = call_in_child(lambda: os.urandom(1) * (5 << 20))
    assert len(future.result(timeout=30)) == 5 << 20


def test_a_raising_child_fails_the_future() -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    with pytest.raises(ChildFailed):
        call_in_child(boom).result(timeout=30)


def test_an_unmarshalable_result_fails_the_future() -> None:
    with pytest.raises(ChildFailed):
        call_in_child(lambda: object()).result(timeout=30)


def test_cancel_kills_the_child(tmp_path: os.PathLike[str]) -> None:
    marker = os.path.join(tmp_path, "pid")

    def slow() -> None:
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)

    cancel = threading.Event()
    future = call_in_child(slow, cancel)
    deadline = time.monotonic() + 30
    while not os.path.exists(marker) or not open(marker).read():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pid = int(open(marker).read())
    started = time.monotonic()
    cancel.set()
    with pytest.raises(ChildFailed, match="cancelled"):
        future.result(timeout=30)
    assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: no zombie either
