"""The machine says no: a full disk, a read-only file system, a permission, too few open files.

Each build ends with exit status 9 (3 for a context file), a message that names the path and a
hint, no traceback; the store stays consistent (no temp file or half-written snapshot, every
blob hashes to its name) and the tag keeps the image it had. The store lives on a small tmpfs
mounted by the test: "full" is a file that takes all its space but what the test leaves.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, hash_blobs, make_context, stray_files
from tests.support.disks import fill, tmpfs

pytestmark = [pytest.mark.root, pytest.mark.overlay]

# a root without the capabilities that let it read and write files it has no permission for:
# what an ordinary user meets, without needing one
NO_DAC = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs of this test's own, unmounted afterwards."""
    with tmpfs(tmp_path / "disk", "32m") as mnt:
        yield mnt


@pytest.fixture
def small(disk: Path, _loaded_store: Path) -> Layerbuild:
    """The CLI over a store (busybox loaded) on `disk`."""
    shutil.copytree(_loaded_store, disk / "store", symlinks=True)
    return Layerbuild(disk / "store")


def _failed(lb: Layerbuild, ctx: Path, code: int = 9) -> str:
    proc = lb("build", "--progress", "plain", "-t", "app:1", ctx)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def _consistent(lb: Layerbuild, tags: dict[str, str]) -> None:
    """Nothing half-written is left and each tag still names its image."""
    assert stray_files(lb.store) == []
    assert hash_blobs(lb.store) == []
    assert list((lb.store / "snapshots" / "layers").glob("tmp-*")) == []
    assert list((lb.store / "tmp").iterdir()) == []
    for tag, digest in tags.items():
        assert lb.inspect(tag)["Digest"] == digest


def _app(tmp_path: Path, lb: Layerbuild) -> tuple[Path, dict[str, str]]:
    """A context built once as app:1 (whose RUN also unpacks busybox into a snapshot)."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo a > /a\n", "a.txt": "a"})
    lb.build(ctx, "-t", "app:1")
    return ctx, {tag: lb.inspect(tag)["Digest"] for tag in ("app:1", "busybox:latest")}


def test_layer_that_does_not_fit(small: Layerbuild, disk: Path, tmp_path: Path) -> None:
    """COPY of 4 MiB with 1 MiB left: the layer's blob cannot be written; freeing space and
    building again works."""
    ctx, tags = _app(tmp_path, small)
    (ctx / "big.bin").write_bytes(os.urandom(4 << 20))  # random: gzip cannot shrink it
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo a > /a\nCOPY big.bin /\n")
    filler = fill(disk, leave=1 << 20)
    err = _failed(small, ctx)
    assert f"No space left on device: {small.store}/" in err
    assert f"(in the store at {small.store})" in err
    assert "Dockerfile:3 (stage stage-0) COPY big.bin /" in err
    assert "hint: free space on that file system" in err and "--root or LAYERBUILD_ROOT" in err
    _consistent(small, tags)
    filler.unlink()
    small.build(ctx, "-t", "app:1")
    assert small.inspect("app:1")["Digest"] != tags["app:1"]


def test_run_that_fills_the_disk(small: Layerbuild, disk: Path, tmp_path: Path) -> None:
    """A RUN whose writes do not fit fails as its command does (exit 4: busybox says "I/O
    error"), and the hint says that the store's file system is full."""
    ctx, tags = _app(tmp_path, small)
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN head -c 4000000 /dev/zero > /big\n")
    fill(disk, leave=1 << 20)
    err = _failed(small, ctx, code=4)
    assert "did not complete successfully" in err
    assert f"hint: the file system of the store at {small.store}, where the step writes, " in err
    _consistent(small, tags)


def test_base_snapshot_that_does_not_fit(small: Layerbuild, disk: Path, tmp_path: Path) -> None:
    """The first RUN over busybox unpacks it into a snapshot: with 256 KiB left that fails,
    naming the file being unpacked; no half snapshot stays."""
    tags = {"busybox:latest": small.inspect("busybox:latest")["Digest"]}
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN true\n"})
    filler = fill(disk, leave=256 << 10)
    err = _failed(small, ctx)
    assert f"No space left on device: {small.store}/snapshots/" in err
    assert "Dockerfile:2 (stage stage-0) RUN true" in err
    _consistent(small, tags)
    filler.unlink()
    small.build(ctx, "-t", "app:1")


def test_read_only_store(small: Layerbuild, disk: Path, tmp_path: Path) -> None:
    """A store on a file system remounted read-only: a build fails saying so, `images` and
    `inspect` still read it, and once it is writable again the build works."""
    ctx, tags = _app(tmp_path, small)
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo b > /b\n")
    subprocess.run(["mount", "-o", "remount,ro", disk], check=True)
    try:
        err = _failed(small, ctx)
        assert f"Read-only file system: {small.store}/" in err
        assert "hint: that file system is mounted read-only: remount it read-write" in err
        assert small.image_names() == {"app:1", "busybox:latest"}
        assert small.inspect("app:1")["Digest"] == tags["app:1"]
    finally:
        subprocess.run(["mount", "-o", "remount,rw", disk], check=True)
    _consistent(small, tags)
    small.build(ctx, "-t", "app:1")


def test_store_the_user_may_not_write(lb: Layerbuild, tmp_path: Path) -> None:
    """A store that belongs to someone else (another uid, and no capability to override
    that): the message names the store and says to use one of your own."""
    ctx, tags = _app(tmp_path, lb)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY a.txt /\n")
    subprocess.run(["chown", "-R", "4321:4321", lb.store], check=True)
    try:
        err = _failed(dataclasses.replace(lb, prefix=NO_DAC), ctx)
        assert f"Permission denied: {lb.store}/" in err
        assert "hint: the store must be writable by the user running layerbuild" in err
    finally:
        subprocess.run(["chown", "-R", "0:0", lb.store], check=True)
    _consistent(lb, tags)


def test_unreadable_context_file(lb: Layerbuild, tmp_path: Path) -> None:
    """A context file the user may not read is a context error (exit 3) naming it, with the
    way out: its mode, or .dockerignore; leaving it out makes the build work."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nCOPY . /app/\n", "a.txt": "a"})
    (ctx / "locked.txt").write_text("private")
    (ctx / "locked.txt").chmod(0)
    user = dataclasses.replace(lb, prefix=NO_DAC)
    err = _failed(user, ctx, code=3)
    assert f"cannot read {ctx}/locked.txt: Permission denied" in err
    assert "change its owner or mode" in err and ".dockerignore" in err
    (ctx / ".dockerignore").write_text("locked.txt\n")
    user.build(ctx, "-t", "app:1")


def test_too_many_open_files(lb: Layerbuild, tmp_path: Path) -> None:
    """With 8 descriptors allowed the build cannot run: the hint says to raise the limit."""
    ctx, tags = _app(tmp_path, lb)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY a.txt /\nRUN cat /a.txt\n")
    err = _failed(dataclasses.replace(lb, prefix=("prlimit", "--nofile=8", "--")), ctx)
    assert "Too many open files" in err and "ulimit -n" in err
    _consistent(lb, tags)
