"""`layerbuild build -`: a tar context (plain or compressed) or a lone Dockerfile on stdin,
as docker build takes them; the archive cannot write outside its temporary root."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from tests.support.cli import REPO, Layerbuild, unpack

pytestmark = [pytest.mark.root, pytest.mark.overlay]

DOCKERFILE = b"FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n"


def _tar(files: dict[str, bytes], *, hostile: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if hostile is not None:
            info = tarfile.TarInfo(hostile)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def _build_stdin(lb: Layerbuild, data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    out = lb.store.parent / "stdin-oci.tar"
    argv = [sys.executable, "-m", "layerbuild", "--root", str(lb.store), "build"]
    argv += ["--progress", "plain", "-t", "t:1", "-o", f"type=oci,dest={out}", *args, "-"]
    return subprocess.run(
        argv, input=data, capture_output=True, env=lb._env(None), cwd=REPO, timeout=300
    )


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


@pytest.mark.parametrize("compression", list(COMPRESSORS))
def test_tar_context_on_stdin(lb: Layerbuild, compression: str) -> None:
    tar = _tar({"Dockerfile": DOCKERFILE, "a.txt": f"{compression}\n".encode()})
    proc = _build_stdin(lb, COMPRESSORS[compression](tar))
    assert proc.returncode == 0, proc.stderr.decode()
    root = unpack(lb.store.parent / "stdin-oci.tar", "1")
    assert (root / "b.txt").read_text() == f"{compression}\n"


def test_dockerfile_named_inside_the_archive(lb: Layerbuild) -> None:
    tar = _tar({"build/Dockerfile.app": b"FROM busybox\nCOPY x /x\n", "x": b"in the tar\n"})
    proc = _build_stdin(lb, tar, "-f", "build/Dockerfile.app")
    assert proc.returncode == 0, proc.stderr.decode()
    assert (unpack(lb.store.parent / "stdin-oci.tar", "1") / "x").read_text() == "in the tar\n"


def test_lone_dockerfile_on_stdin_has_an_empty_context(lb: Layerbuild) -> None:
    ok = _build_stdin(lb, b"FROM busybox\nRUN echo made > /m\n")
    assert ok.returncode == 0, ok.stderr.decode()
    assert (unpack(lb.store.parent / "stdin-oci.tar", "1") / "m").read_text() == "made\n"
    copy = _build_stdin(lb, b"FROM busybox\nCOPY Dockerfile /d\n")
    assert copy.returncode != 0  # docker's context from a piped Dockerfile is empty too


def test_hostile_archive_and_double_stdin_are_refused(lb: Layerbuild, tmp_path: Path) -> None:
    outside = "../../../../../../../tmp/layerbuild-stdin-escape"
    proc = _build_stdin(lb, _tar({"Dockerfile": DOCKERFILE}, hostile=outside))
    assert proc.returncode != 0 and b"cannot unpack the context archive" in proc.stderr
    assert not Path("/tmp/layerbuild-stdin-escape").exists()
    both = _build_stdin(lb, DOCKERFILE, "-f", "-")
    assert both.returncode != 0 and b"both the context and the Dockerfile" in both.stderr
    leftovers = list(Path("/tmp").glob("layerbuild-context-*"))
    assert leftovers == []


def test_dockerignore_link_in_the_archive_is_not_followed_out(
    lb: Layerbuild, tmp_path: Path
) -> None:
    """An archive's `.dockerignore -> /<host file>` is resolved inside the unpacked context
    (where nothing is), never on the host: keep.txt, which the host file names, is copied."""
    host = tmp_path / "host-ignore"
    host.write_text("keep.txt\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {
            "Dockerfile": b"FROM busybox\nCOPY . /app/\n",
            "keep.txt": b"k",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(".dockerignore")
        link.type, link.linkname = tarfile.SYMTYPE, str(host)
        tar.addfile(link)
    proc = _build_stdin(lb, buf.getvalue())
    assert proc.returncode == 0, proc.stderr.decode()
    assert (unpack(lb.store.parent / "stdin-oci.tar", "1") / "app" / "keep.txt").exists()
