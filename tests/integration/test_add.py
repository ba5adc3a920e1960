"""ADD through the real CLI: local archives unpacked, URLs downloaded from a local HTTP server."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import io
import lzma
import os
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard

from tests.support.cli import Layerbuild, OciImage, make_context, unpack
from tests.support.hostile_tars import hostile_tars

pytestmark = pytest.mark.tools

MEMBERS = {"pkg/bin/tool": b"#!/bin/sh\necho tool\n", "pkg/README": b"read me\n"}


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in MEMBERS.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "tar.gz": gzip.compress,
    "tar.bz2": bz2.compress,
    "tar.xz": lzma.compress,
    "tar.zst": lambda data: zstandard.ZstdCompressor().compress(data),
    "tar": lambda data: data,
}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_local_archives_are_unpacked(lb: Layerbuild, tmp_path: Path, suffix: str) -> None:
    """ADD of a local tar (plain, gzip, bzip2, xz, zstd) extracts its members into dest."""
    name = f"bundle.{suffix}"
    ctx = make_context(
        tmp_path,
        {"Dockerfile": f"FROM busybox\nADD {name} /opt/\n", name: COMPRESSORS[suffix](_tar())},
    )
    root = lb.rootfs(ctx)
    for member, data in MEMBERS.items():
        assert (root / "opt" / member).read_bytes() == data
    assert (root / "opt/pkg/bin/tool").stat().st_mode & 0o777 == 0o755
    assert not (root / "opt" / name).exists()


def test_gzip_that_is_not_a_tar_is_copied(lb: Layerbuild, tmp_path: Path) -> None:
    """A .gz file whose content is not a tar is copied as the (still compressed) file."""
    payload = gzip.compress(b"just some text, not a tar\n")
    ctx = make_context(
        tmp_path, {"Dockerfile": "FROM busybox\nADD notes.gz /data/\n", "notes.gz": payload}
    )
    assert (lb.rootfs(ctx) / "data/notes.gz").read_bytes() == payload


def test_add_of_a_plain_file_copies_it(lb: Layerbuild, tmp_path: Path) -> None:
    """ADD of a regular file behaves like COPY."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nADD f.txt /f.txt\n", "f.txt": "f"})
    assert (lb.rootfs(ctx) / "f.txt").read_text() == "f"


class _Server:
    def __init__(self, root: Path) -> None:
        handler = _quiet_handler(root)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _quiet_handler(root: Path) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[_Server, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    server = _Server(root)
    try:
        yield server, root
    finally:
        server.close()


def test_url_download_with_good_checksum(
    lb: Layerbuild, tmp_path: Path, served: tuple[_Server, Path]
) -> None:
    """ADD --checksum=sha256:<right> URL dir/ downloads the file under its URL name, mode 0600."""
    server, www = served
    data = b"downloaded payload\n" * 100
    (www / "file.bin").write_bytes(data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    ctx = make_context(
        tmp_path,
        {"Dockerfile": f"FROM busybox\nADD --checksum={digest} {server.url('file.bin')} /dl/\n"},
    )
    root = lb.rootfs(ctx)
    assert (root / "dl/file.bin").read_bytes() == data
    assert (root / "dl/file.bin").stat().st_mode & 0o7777 == 0o600


def test_url_download_with_bad_checksum_fails(
    lb: Layerbuild, tmp_path: Path, served: tuple[_Server, Path]
) -> None:
    """A wrong --checksum fails the build, naming the expected and the actual digest."""
    server, www = served
    data = b"the real content\n"
    (www / "file.bin").write_bytes(data)
    wrong = "sha256:" + "0" * 64
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    ctx = make_context(
        tmp_path,
        {"Dockerfile": f"FROM busybox\nADD --checksum={wrong} {server.url('file.bin')} /dl/\n"},
    )
    proc = lb("build", "-t", "bad:1", ctx)
    assert proc.returncode != 0
    assert wrong in proc.stderr and actual in proc.stderr
    assert "bad:1" not in lb.image_names()


def test_url_download_to_a_file_name_and_chmod(
    lb: Layerbuild, tmp_path: Path, served: tuple[_Server, Path]
) -> None:
    """ADD URL /path/name writes that name; --chmod overrides the 0600 download mode; a
    downloaded tarball is not extracted (only local archives are)."""
    server, www = served
    tarball = gzip.compress(_tar())
    (www / "pkg.tar.gz").write_bytes(tarball)
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": f"FROM busybox\nADD {server.url('pkg.tar.gz')} /dl/renamed.tgz\n"
            f"ADD --chmod=644 {server.url('pkg.tar.gz')} /dl2/\n"
        },
    )
    root = lb.rootfs(ctx)
    assert (root / "dl/renamed.tgz").read_bytes() == tarball
    assert (root / "dl/renamed.tgz").stat().st_mode & 0o7777 == 0o600
    assert (root / "dl2/pkg.tar.gz").stat().st_mode & 0o7777 == 0o644


def test_url_not_found_fails_with_the_status(
    lb: Layerbuild, tmp_path: Path, served: tuple[_Server, Path]
) -> None:
    """An HTTP 404 fails the build and the message carries the URL and the status."""
    server, _ = served
    url = server.url("missing.bin")
    ctx = make_context(tmp_path, {"Dockerfile": f"FROM busybox\nADD {url} /dl/\n"})
    proc = lb("build", "-t", "x:1", ctx)
    assert proc.returncode != 0
    assert url in proc.stderr and "404" in proc.stderr


@pytest.mark.parametrize("attack", sorted(hostile_tars("/victim")))
def test_hostile_archives_never_escape(lb: Layerbuild, tmp_path: Path, attack: str) -> None:
    """ADD of a tar that tries to escape (tar-slip, symlinked parents, escaping hard links and
    whiteouts) either fails cleanly or yields layers whose entries all stay inside the image;
    the victim directory outside is untouched by the build, the rootfs export and a
    COPY --from that unpacks the stage."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "passwd").write_text("original\n")
    tar = hostile_tars(str(victim))[attack]
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox AS a\nADD evil.tar /x/\n"
            "FROM busybox\nCOPY --from=a /x /copied/\n",
            "evil.tar": tar,
        },
    )
    out = tmp_path / "img.tar"
    proc = lb("build", "-t", "evil:1", "-o", f"type=oci,dest={out}",
              "-o", f"type=local,dest={tmp_path / 'rootfs'}", ctx)  # fmt: skip
    assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(victim)) == ["passwd"]
    assert (victim / "passwd").read_text() == "original\n"
    if proc.returncode != 0:
        assert "evil.tar" in proc.stderr or "outside" in proc.stderr or "unsafe" in proc.stderr
        return
    img = OciImage(out)
    for n in range(1, len(img.manifest()["layers"])):
        for m in img.layer_members(n):
            parts = m.name.split("/")
            assert not m.name.startswith("/") and ".." not in parts, m.name
            if m.islnk():
                assert not m.linkname.startswith("/") and ".." not in m.linkname.split("/")
    unpack(out, "1")
    assert (victim / "passwd").read_text() == "original\n"


def _raw_tar(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    """A tar of (name, kind, data-or-link) entries in order; kind is file, dir, symlink or
    hardlink."""
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE}  # fmt: skip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = types[kind], 0o755, 1_600_000_000
            if kind == "file":
                assert isinstance(value, bytes)
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
            else:
                info.linkname = value if isinstance(value, str) else ""
                tar.addfile(info)
    return buf.getvalue()


def test_archive_keeps_existing_parent_directories(lb: Layerbuild, tmp_path: Path) -> None:
    """ADD of a tar holding tmp/x and home/app/y (no entries for the directories) leaves the
    image's /tmp (1777) and /home/app (owned by 1000) as they were, as archive.Untar does."""
    tar = _raw_tar([("tmp/x", "file", b"x"), ("home/app/y", "file", b"y")])
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nADD t.tar /\n", "t.tar": tar})
    root = lb.rootfs(ctx)
    assert (root / "tmp/x").read_bytes() == b"x"
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (root / "home/app").stat().st_uid == 1000


def test_archive_entries_follow_symlinked_directories(lb: Layerbuild, tmp_path: Path) -> None:
    """Entries below a directory that is a symlink (in the image, as on merged-/usr systems,
    or made earlier by the same archive) land in the link's target; the links stay links."""
    links = _raw_tar([("usr/lib", "dir", b""), ("lib", "symlink", "usr/lib")])
    payload = _raw_tar(
        [
            ("lib/libx.so", "file", b"elf"),
            ("opt/real", "dir", b""),
            ("opt/alias", "symlink", "real"),
            ("opt/alias/inner.txt", "file", b"inner"),
        ]
    )
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\nADD links.tar /\nADD payload.tar /\n",
            "links.tar": links,
            "payload.tar": payload,
        },
    )
    out = lb.build_oci(ctx)
    root = unpack(out, "1")
    assert os.readlink(root / "lib") == "usr/lib"
    assert (root / "usr/lib/libx.so").read_bytes() == b"elf"
    assert os.readlink(root / "opt/alias") == "real"
    assert (root / "opt/real/inner.txt").read_bytes() == b"inner"
    names = {m.name.rstrip("/") for m in OciImage(out).layer_members(-1)}
    assert "usr/lib/libx.so" in names and "lib" not in names


def test_archive_hard_link_to_nothing_fails(lb: Layerbuild, tmp_path: Path) -> None:
    """A hard link whose target is neither an earlier archive entry nor an image file fails
    the build (Untar's link(2) fails in Docker too) instead of writing a layer no tool can
    unpack."""
    tar = _raw_tar([("a", "file", b"a"), ("h", "hardlink", "missing")])
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nADD t.tar /x/\n", "t.tar": tar})
    proc = lb("build", "-t", "hl:1", ctx)
    assert proc.returncode != 0
    assert "missing" in proc.stderr and "Traceback" not in proc.stderr
    assert "hl:1" not in lb.image_names()


def test_archive_hard_links_to_earlier_entries(lb: Layerbuild, tmp_path: Path) -> None:
    """A hard link to an earlier entry of the archive is extracted as the same inode."""
    tar = _raw_tar([("d/a", "file", b"shared"), ("d/h", "hardlink", "d/a")])
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nADD t.tar /x/\n", "t.tar": tar})
    root = lb.rootfs(ctx)
    assert (root / "x/d/h").read_bytes() == b"shared"
    assert (root / "x/d/h").stat().st_ino == (root / "x/d/a").stat().st_ino
