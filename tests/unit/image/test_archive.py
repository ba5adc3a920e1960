"""ADD of a local archive: detection as Docker does it and Changes re-rooted under dest."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Callable

import pytest
import zstandard

from layerbuild.errors import UnsafeArchiveError
from layerbuild.image.archive import archive_changes, is_archive
from layerbuild.image.changes import ChangeKind
from tests.support.random_layer import content_of


def make_tar(*entries: tuple[str, bytes, str], empty: bool = False) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mtime = kind, link, 1234
            data = b"data of " + name.encode() if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


SAMPLE = make_tar(("./dir/", tarfile.DIRTYPE, ""), ("./dir/file", tarfile.REGTYPE, ""))
COMPRESSORS: list[Callable[[bytes], bytes]] = [
    lambda b: b,
    gzip.compress,
    bz2.compress,
    lzma.compress,
    lambda b: zstandard.ZstdCompressor().compress(b),
]


@pytest.mark.parametrize("compress", COMPRESSORS)
def test_tars_are_archives_in_every_compression(compress: Callable[[bytes], bytes]) -> None:
    assert is_archive(compress(SAMPLE))


@pytest.mark.parametrize(
    "head",
    [
        gzip.compress(b"just some text, not a tar" * 40),
        bz2.compress(b"plain" * 300),
        b"#!/bin/sh\necho hello\n" * 50,
        b"\0" * 10240,  # an empty tar: Docker copies it
        gzip.compress(b"\0" * 10240),
        b"\x1f\x8b\x08truncated",
        b"",
    ],
)
def test_other_files_are_copied_not_extracted(head: bytes) -> None:
    assert not is_archive(head)


def test_header_with_bad_checksum_is_not_a_tar() -> None:
    broken = bytearray(SAMPLE)
    broken[0] ^= 0xFF
    assert not is_archive(bytes(broken))


@pytest.mark.parametrize("compress", COMPRESSORS)
def test_entries_are_rerooted_under_dest(compress: Callable[[bytes], bytes]) -> None:
    data = make_tar(
        ("./", tarfile.DIRTYPE, ""),
        ("a/b/c.txt", tarfile.REGTYPE, ""),
        ("/abs/x", tarfile.REGTYPE, ""),
        ("/../clamped", tarfile.REGTYPE, ""),
        ("a/link", tarfile.LNKTYPE, "a/b/c.txt"),
        ("a/sym", tarfile.SYMTYPE, "/etc/passwd"),
        ("a/b/rel", tarfile.SYMTYPE, "../../abs/x"),
    )
    got = []
    for change in archive_changes(io.BytesIO(compress(data)), "/app/"):
        got.append((change.path, change.kind, change.link, content_of(change)))
    assert got == [
        ("app/a", ChangeKind.DIR, "", b""),
        ("app/a/b", ChangeKind.DIR, "", b""),
        ("app/a/b/c.txt", ChangeKind.FILE, "", b"data of a/b/c.txt"),
        ("app/abs", ChangeKind.DIR, "", b""),
        ("app/abs/x", ChangeKind.FILE, "", b"data of /abs/x"),
        ("app/clamped", ChangeKind.FILE, "", b"data of /../clamped"),
        ("app/a/link", ChangeKind.HARDLINK, "app/a/b/c.txt", b""),
        ("app/a/sym", ChangeKind.SYMLINK, "/etc/passwd", b""),
        ("app/a/b/rel", ChangeKind.SYMLINK, "../../abs/x", b""),
    ]


@pytest.mark.parametrize(
    "entry",
    [
        ("../evil", tarfile.REGTYPE, ""),
        ("a/../../evil", tarfile.REGTYPE, ""),
        ("h", tarfile.LNKTYPE, "../../etc/shadow"),
        ("h", tarfile.LNKTYPE, "/../outside"),
        ("s", tarfile.SYMTYPE, "../outside"),
        ("d/s", tarfile.SYMTYPE, "/../../outside"),
    ],
)
def test_climbing_out_of_dest_is_refused(entry: tuple[str, bytes, str]) -> None:
    with pytest.raises(UnsafeArchiveError, match="outside the destination '/app'"):
        list(archive_changes(io.BytesIO(make_tar(entry)), "app"))


def test_whiteout_names_stay_plain_files() -> None:
    data = make_tar((".wh.hidden", tarfile.REGTYPE, ""))
    (change,) = [(c.path, c.kind) for c in archive_changes(io.BytesIO(data), "x")]
    assert change == ("x/.wh.hidden", ChangeKind.FILE)
