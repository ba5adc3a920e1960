"""`layerbuild watch`: a build of an unchanged context takes its listing from the watcher, and
after any kind of change the watcher never vouches for the old one. Each change is checked by a
dry run with the watcher against the real build that follows without it (walkers only), and
the watcher must have answered "stale" for it; once it walked again, a build is all hits on the
listing it sends."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from layerbuild.context.watchclient import socket_path
from tests.integration.test_dry_run import assert_dry_run_matches, dry_run
from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

DOCKERFILE = """\
FROM busybox
COPY src/ /app/
RUN ls -lnR /app > /listing
COPY . /all/
"""
FILES = {
    "Dockerfile": DOCKERFILE,
    "src/a.txt": "hello\n",
    "src/deep/b.txt": "b\n",
    "notes.md": "n\n",
    ".dockerignore": "*.log\n",
}
READY = "listing ready"
CLEAN = "answered a build: the listing"
STALE = "answered a build: stale"


class Watcher:
    """`layerbuild watch CONTEXT` in the background, its log read as it grows."""

    def __init__(self, lb: Layerbuild, ctx: Path, log: Path) -> None:
        self.log = log
        self.out = open(log, "w")  # closed by stop()
        self.proc = lb.spawn("watch", ctx, output=self.out)
        self.wait_for(READY, 1)

    def count(self, line: str) -> int:
        return self.log.read_text().count(line)

    def wait_for(self, line: str, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.count(line) < n:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"no {line!r} x{n}:\n{self.log.read_text()}"
            time.sleep(0.05)

    def wait_settled(self, walks: int, timeout: float = 30) -> None:
        """Until the watcher walked more than `walks` times, the last time with no entry
        young enough to make it walk again (the stat cache's racy margin)."""
        deadline = time.monotonic() + timeout
        while True:
            ready = [line for line in self.log.read_text().splitlines() if READY in line]
            if len(ready) > walks and "walking again" not in ready[-1]:
                return
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"not settled:\n{self.log.read_text()}"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=10)
        self.out.close()
        return code


@pytest.fixture
def watched(lb: Layerbuild, tmp_path: Path) -> Iterator[tuple[Path, Watcher]]:
    ctx = make_context(tmp_path, FILES)
    (ctx / "src" / "link").symlink_to("a.txt")
    lb.build(ctx, "-t", "x:1")
    time.sleep(2.1)  # past the stat cache's racy margin: the settled state a user rebuilds
    watcher = Watcher(lb, ctx, tmp_path / "watch.log")
    try:
        yield ctx, watcher
    finally:
        if watcher.proc.poll() is None:
            watcher.stop()


def _same_content_same_mtime(ctx: Path) -> None:
    path = ctx / "src" / "a.txt"
    st = path.stat()
    path.write_text("HELLO\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _symlink_retargeted(ctx: Path) -> None:
    (ctx / "src" / "link").unlink()
    (ctx / "src" / "link").symlink_to("deep/b.txt")


CHANGES: dict[str, Callable[[Path], object]] = {
    "appended": lambda c: (c / "src" / "a.txt").write_text("hello again\n"),
    "same size and mtime": _same_content_same_mtime,
    "mode": lambda c: os.chmod(c / "src" / "deep" / "b.txt", 0o600),
    "added": lambda c: (c / "src" / "new.txt").write_text("new\n"),
    "removed": lambda c: os.unlink(c / "src" / "deep" / "b.txt"),
    "renamed": lambda c: os.rename(c / "src" / "a.txt", c / "src" / "z.txt"),
    "new directory": lambda c: (c / "src" / "d2").mkdir() or (c / "src" / "d2" / "f").touch(),
    "symlink retargeted": _symlink_retargeted,
    "root file": lambda c: (c / "notes.md").write_text("changed\n"),
    "dockerignore": lambda c: (c / ".dockerignore").write_text("*.log\nnotes.md\n"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_no_change_is_served_and_a_change_never_is(
    lb: Layerbuild, watched: tuple[Path, Watcher], change: str
) -> None:
    ctx, watcher = watched
    served = watcher.count(CLEAN)
    steps = dry_run(lb, ctx)["steps"]
    assert [s["cache"] for s in steps] == ["hit"] * 4
    assert watcher.count(CLEAN) == served + 1

    walks, stale = watcher.count(READY), watcher.count(STALE)
    CHANGES[change](ctx)
    dry, real = assert_dry_run_matches(lb, ctx)  # no waiting: the change was just made
    assert watcher.count(STALE) >= stale + 1
    assert "miss" in [s["cache"] for s in real]

    watcher.wait_settled(walks)  # quiet again, and the change older than the racy margin
    served = watcher.count(CLEAN)
    dry, real = assert_dry_run_matches(lb, ctx)
    assert [s["cache"] for s in real] == ["hit"] * 4
    assert watcher.count(CLEAN) == served + 2  # the dry run and the build


def test_a_hard_link_changed_outside_the_context_is_not_vouched_for(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, FILES)
    outside = tmp_path / "outside.txt"
    os.link(ctx / "src" / "a.txt", outside)
    lb.build(ctx, "-t", "x:1")
    time.sleep(2.1)
    watcher = Watcher(lb, ctx, tmp_path / "watch.log")
    try:
        assert [s["cache"] for s in dry_run(lb, ctx)["steps"]] == ["hit"] * 4
        assert watcher.count(CLEAN) == 1
        outside.write_text("HELLO\n")  # no event under the context: inotify cannot see it
        dry, real = assert_dry_run_matches(lb, ctx)
        assert [s["cache"] for s in real][:2] == ["hit", "miss"]
        # the dry run was answered stale; the build after it, stale too or, once the watcher
        # walked again, with a listing that shows the change
        assert watcher.count(STALE) >= 1
    finally:
        watcher.stop()


def test_a_killed_watcher_leaves_builds_correct_and_the_next_one_takes_over(
    lb: Layerbuild, watched: tuple[Path, Watcher], tmp_path: Path
) -> None:
    ctx, watcher = watched
    assert watcher.stop(signal.SIGKILL) == -signal.SIGKILL  # its socket is left behind
    (ctx / "src" / "a.txt").write_text("changed while nobody watched\n")
    dry, real = assert_dry_run_matches(lb, ctx)
    assert [s["cache"] for s in real][:2] == ["hit", "miss"]

    again = Watcher(lb, ctx, tmp_path / "watch2.log")
    try:
        refused = lb("watch", ctx, timeout=30)  # a second watcher of the same context
        assert refused.returncode != 0 and "already running" in refused.stderr
    finally:
        assert again.stop() == 0
    assert not os.path.lexists(socket_path(os.path.realpath(ctx)))  # removed on the way out
