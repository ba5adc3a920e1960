"""Nothing of a build reads outside its context: symbolic links in the context are resolved
inside it, as BuildKit resolves them in its snapshot of the context (fs.RootPath).

Each test puts a host file with a marker beside the context and a link to it inside, and
checks that the marker reaches neither the image nor the output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = pytest.mark.tools

HOST = "HOST-ONLY-MARKER"


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A directory outside the context: `passwd` and `ignore` hold the marker."""
    d = tmp_path / "host"
    d.mkdir()
    (d / "passwd").write_text(HOST + "\n")
    (d / "ignore").write_text("keep.txt\n")
    (d / "Dockerfile").write_text(f"FROM busybox\nLABEL origin={HOST}\n")
    return d


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


def test_dockerignore_link_out_of_the_context_is_not_read(
    lb: Layerbuild, tmp_path: Path, host_dir: Path
) -> None:
    """ctx/.dockerignore -> host file: the link names ctx/<host path> (absent), so no rules
    apply and keep.txt, which the host file would exclude, is copied."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nCOPY . /app/\n", "keep.txt": "k"})
    os.symlink(host_dir / "ignore", ctx / ".dockerignore")
    assert "keep.txt" in _files(lb.rootfs(ctx) / "app")
    os.unlink(ctx / ".dockerignore")
    os.symlink("../host/ignore", ctx / ".dockerignore")  # `..` stops at the context root
    assert "keep.txt" in _files(lb.rootfs(ctx) / "app")


def test_dockerignore_link_inside_the_context_is_followed(lb: Layerbuild, tmp_path: Path) -> None:
    """A link to a file in the context is read, an absolute target taken from the root."""
    ctx = make_context(
        tmp_path,
        {"Dockerfile": "FROM busybox\nCOPY . /app/\n", "keep.txt": "k", "conf/ignore": "keep.txt"},
    )
    os.symlink("/conf/ignore", ctx / ".dockerignore")
    files = _files(lb.rootfs(ctx) / "app")
    assert "keep.txt" not in files and "conf/ignore" in files


def test_per_dockerfile_ignore_link_out_is_not_read(
    lb: Layerbuild, tmp_path: Path, host_dir: Path
) -> None:
    """-f d/app.Dockerfile with d/app.Dockerfile.dockerignore -> host file: not read, so the
    context's own .dockerignore applies."""
    ctx = make_context(
        tmp_path,
        {
            "d/app.Dockerfile": "FROM busybox\nCOPY . /app/\n",
            ".dockerignore": "other.txt",
            "keep.txt": "k",
            "other.txt": "o",
        },
    )
    os.symlink(host_dir / "ignore", ctx / "d" / "app.Dockerfile.dockerignore")
    files = _files(lb.rootfs(ctx, "-f", ctx / "d" / "app.Dockerfile") / "app")
    assert "keep.txt" in files and "other.txt" not in files


def test_dockerfile_link_out_of_the_context_is_not_read(
    lb: Layerbuild, tmp_path: Path, host_dir: Path
) -> None:
    """ctx/Dockerfile -> host file: "no Dockerfile" (exit 3), the host file never parsed."""
    ctx = make_context(tmp_path, {"real.Dockerfile": "FROM busybox\nLABEL origin=inside\n"})
    os.symlink(host_dir / "Dockerfile", ctx / "Dockerfile")
    proc = lb("build", "-t", "x:1", ctx)
    assert proc.returncode == 3, proc.stderr
    assert "no Dockerfile at" in proc.stderr and HOST not in proc.stderr
    assert "x:1" not in lb.image_names()
    os.unlink(ctx / "Dockerfile")
    os.symlink("real.Dockerfile", ctx / "Dockerfile")
    lb.build(ctx, "-t", "x:1")
    assert lb.config("x:1")["config"]["Labels"] == {"origin": "inside"}


def test_copy_through_a_parent_link_stays_in_the_context(
    lb: Layerbuild, tmp_path: Path, host_dir: Path
) -> None:
    """ctx/sub -> /<host dir>: `COPY sub/passwd` looks up ctx/<host dir>/passwd, as in a
    chroot; with that path absent it fails, and the host file is never read."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nCOPY sub/passwd /x\n"})
    os.symlink(host_dir, ctx / "sub")
    proc = lb("build", "-t", "x:1", ctx)
    assert proc.returncode == 3, proc.stderr
    assert "sub/passwd" in proc.stderr and HOST not in proc.stderr
    inside = ctx / str(host_dir).lstrip("/")
    inside.mkdir(parents=True)
    (inside / "passwd").write_text("context copy\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY sub/passwd /x\nCOPY sub/pass* /y/\n")
    root = lb.rootfs(ctx)
    assert (root / "x").read_text() == "context copy\n"
    assert (root / "y" / "passwd").read_text() == "context copy\n"


def test_named_directory_context_link_stays_in_that_directory(
    lb: Layerbuild, tmp_path: Path, host_dir: Path
) -> None:
    """--build-context extra=DIR: a link in DIR is resolved inside DIR for COPY --from."""
    extra = make_context(tmp_path, {"real/passwd": "extra copy\n"}, name="extra")
    os.symlink(host_dir, extra / "out")
    os.symlink("real", extra / "in")
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nCOPY --from=extra in/passwd /x\n"})
    root = lb.rootfs(ctx, "--build-context", f"extra={extra}")
    assert (root / "x").read_text() == "extra copy\n"
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY --from=extra out/passwd /x\n")
    proc = lb("build", "--build-context", f"extra={extra}", ctx)
    assert proc.returncode == 3, proc.stderr
    assert HOST not in proc.stderr
