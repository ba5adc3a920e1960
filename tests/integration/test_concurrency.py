"""Several layerbuild processes on one store: parallel builds, and a build killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, hash_blobs, make_context, stray_files

pytestmark = pytest.mark.slow

MB = 1 << 20


def _fill(path: Path, size: int, seed: bytes) -> None:
    """`size` bytes that gzip cannot shrink (a random block repeated beyond gzip's window)."""
    block = os.urandom(MB - len(seed)) + seed
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for _ in range(size // MB):
            f.write(block)


def test_two_builds_on_one_store_at_once(lb: Layerbuild, tmp_path: Path) -> None:
    """Two builds of different Dockerfiles started together on one store both succeed, each
    tag gets its own image, and every blob matches its name."""
    procs = []
    for name in ("one", "two"):
        ctx = make_context(
            tmp_path,
            {"Dockerfile": f"FROM busybox\nCOPY . /{name}/\nLABEL which={name}\n"},
            f"ctx-{name}",
        )
        _fill(ctx / "data.bin", 40 * MB, name.encode())
        procs.append(lb.spawn("build", "--progress", "plain", "-t", f"{name}:1", ctx))
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert lb.config("one:1")["config"]["Labels"] == {"which": "one"}
    assert lb.config("two:1")["config"]["Labels"] == {"which": "two"}
    assert lb.inspect("one:1")["Layers"][-1] != lb.inspect("two:1")["Layers"][-1]
    assert hash_blobs(lb.store) == []
    assert stray_files(lb.store) == []


def _kill_mid_ingest(proc: subprocess.Popen[str], ingest: Path, min_size: int) -> int:
    """SIGKILL proc once a temp file under ingest/ holds at least min_size bytes; its size."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        for entry in os.scandir(ingest):
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue  # committed or aborted between scandir and stat
            if size >= min_size:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return size
        time.sleep(0.002)
    proc.kill()
    proc.wait(timeout=30)
    pytest.fail(
        f"no temp file of {min_size} bytes appeared under {ingest} (exit {proc.returncode})"
    )


def test_sigkill_mid_pack_leaves_the_store_sound(lb: Layerbuild, tmp_path: Path) -> None:
    """A build SIGKILLed while packing a 200 MB layer leaves no blob whose content mismatches
    its name, the previous image of its tag intact, and the next build works and clears the
    dead writer's temp file."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nCOPY small.txt /\n"})
    (ctx / "small.txt").write_text("v1\n")
    lb.build(ctx, "-t", "app:1")
    previous = lb.inspect("app:1")
    blobs_before = set(os.listdir(lb.store / "blobs/sha256"))

    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY . /data/\n")
    for i in range(4):
        _fill(ctx / f"big{i}.bin", 50 * MB, bytes([i]))
    proc = lb.spawn("build", "--progress", "plain", "-t", "app:1", ctx)
    size = _kill_mid_ingest(proc, lb.store / "ingest", 8 * MB)
    assert proc.returncode == -signal.SIGKILL
    assert size < 200 * MB  # really mid-pack

    assert hash_blobs(lb.store) == []
    assert set(os.listdir(lb.store / "blobs/sha256")) == blobs_before  # nothing half-written
    assert lb.inspect("app:1") == previous
    assert lb.config("app:1")["rootfs"]["diff_ids"][-1] == previous["RootFS"]["DiffIDs"][-1]

    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY small.txt /again.txt\n")
    lb.build(ctx, "-t", "app:2")
    assert lb.inspect("app:1") == previous
    assert stray_files(lb.store) == []  # the next store open removed the dead writer's file
    assert hash_blobs(lb.store) == []
