"""The layer tar reader: the writer's inverse, whiteout names, normalisation, streaming."""

from __future__ import annotations

import io
import tarfile
from typing import BinaryIO

import pytest

from layerbuild.errors import ImageFormatError
from layerbuild.image.changes import Change, ChangeKind, sorted_changes
from layerbuild.image.tarreader import read_changes
from layerbuild.image.tarwriter import write_tar
from tests.support.random_layer import content_of, random_layer


class Unseekable:
    """Only read(): what a pipe or a decompressor offers."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)


def layer_tar(changes: list[Change]) -> bytes:
    out = io.BytesIO()
    write_tar(changes, out)
    return out.getvalue()


def comparable(change: Change) -> tuple[object, ...]:
    return (
        change.path,
        change.kind,
        change.mode,
        change.uid,
        change.gid,
        change.size,
        change.mtime,
        change.link,
        change.devmajor,
        change.devminor,
        change.xattrs,
    )


def test_round_trip_writer_to_reader_is_lossless() -> None:
    changes = random_layer(11)
    expected = {}
    for ch in sorted_changes(changes):
        if ch.kind in (ChangeKind.WHITEOUT, ChangeKind.OPAQUE):
            ch = Change(ch.path, ch.kind, mode=0, mtime=0)  # markers carry no metadata
        expected[(ch.path, ch.kind)] = (comparable(ch), content_of(ch))
    got = {}
    stream: BinaryIO = Unseekable(layer_tar(changes))  # type: ignore[assignment]
    for ch in read_changes(stream):
        got[(ch.path, ch.kind)] = (comparable(ch), content_of(ch))  # read while current
    assert got == expected


def python_tar(entries: list[tuple[tarfile.TarInfo, bytes]], fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tf:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.mtime = kind, link, 0o640, 99
    return ti


def test_names_are_normalised_and_never_climb() -> None:
    data = python_tar(
        [
            (info("./a/", tarfile.DIRTYPE), b""),
            (info("/abs/file"), b"x"),
            (info("../../up"), b"y"),
            (info("a/../../b/./c"), b"z"),
            (info("h", tarfile.LNKTYPE, "/../abs/file"), b""),
            (info("s", tarfile.SYMTYPE, "../../kept/verbatim"), b""),
        ],
        tarfile.PAX_FORMAT,
    )
    changes = list(read_changes(io.BytesIO(data)))
    assert [c.path for c in changes] == ["a", "abs/file", "up", "b/c", "h", "s"]
    assert changes[4].link == "abs/file"
    assert changes[5].link == "../../kept/verbatim"


def test_whiteouts_and_opaque_markers() -> None:
    data = python_tar(
        [
            (info("d/.wh..wh..opq"), b""),
            (info("d/.wh.gone"), b""),
            (info(".wh.top"), b""),
            (info("d/.wh..wh.plnk"), b""),  # AUFS metadata: skipped like Docker does
        ],
        tarfile.USTAR_FORMAT,
    )
    changes = [(c.path, c.kind) for c in read_changes(io.BytesIO(data))]
    assert changes == [
        ("d", ChangeKind.OPAQUE),
        ("d/gone", ChangeKind.WHITEOUT),
        ("top", ChangeKind.WHITEOUT),
    ]


def test_gnu_long_names_and_pax_xattrs_are_read() -> None:
    long_name = "dir/" + "n" * 200
    gnu = python_tar([(info(long_name), b"data")], tarfile.GNU_FORMAT)
    got = [(c.path, content_of(c)) for c in read_changes(io.BytesIO(gnu))]
    assert got == [(long_name, b"data")]
    pax_info = info("cap")
    pax_info.pax_headers = {
        "SCHILY.xattr.security.capability": "\x01\udcff",
        "SCHILY.xattr.user.a": "b",
    }
    pax = python_tar([(pax_info, b"")], tarfile.PAX_FORMAT)
    (change,) = read_changes(io.BytesIO(pax))
    assert change.xattrs == (("security.capability", b"\x01\xff"), ("user.a", b"b"))


def test_content_opener_is_invalid_once_the_reader_moves_on() -> None:
    data = python_tar([(info("a"), b"first"), (info("b"), b"second")], tarfile.USTAR_FORMAT)
    changes = list(read_changes(io.BytesIO(data)))
    with pytest.raises(RuntimeError, match="after the tar reader moved past it"):
        content_of(changes[0])


def test_spool_makes_content_durable() -> None:
    data = python_tar([(info("a"), b"first"), (info("b"), b"second")], tarfile.USTAR_FORMAT)
    spooled: list[int] = []

    def spool(reader: BinaryIO, size: int) -> object:
        body = reader.read()
        spooled.append(size)
        return lambda: io.BytesIO(body)

    changes = list(read_changes(io.BytesIO(data), spool=spool))  # type: ignore[arg-type]
    assert [content_of(c) for c in changes] == [b"first", b"second"]
    assert spooled == [5, 6]


def test_garbage_is_an_image_format_error() -> None:
    with pytest.raises(ImageFormatError, match="not a readable tar"):
        list(read_changes(io.BytesIO(b"\x01" * 1024)))
