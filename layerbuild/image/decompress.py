"""Reading compressed layers and archives back: which compression a stream has, and a reader of
its uncompressed bytes.

Apart from compress.py because reading is the other direction with other users (unpacking,
export, `load`, validation, ADD's archives) and other formats (bzip2 and xz are read, never
written); a module that only reads a layer need not load the packing pipeline.
"""

from __future__ import annotations

import bz2
import lzma
from typing import BinaryIO, cast

import zstandard
from isal import igzip

from layerbuild.errors import ImageFormatError

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def detect_compression(head: bytes) -> str:
    """'gzip', 'zstd', 'bzip2', 'xz' or 'none' from the first bytes of a stream (6 suffice)."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


def open_layer(fileobj: BinaryIO, compression: str) -> BinaryIO:
    """A reader of the uncompressed bytes of ``fileobj`` ('gzip', 'zstd', 'bzip2', 'xz', 'none').

    The reader does not close ``fileobj``; it streams, so ``fileobj`` need not be seekable.
    """
    if compression == "gzip":
        reader = igzip.GzipFile(fileobj=fileobj, mode="rb")  # type: ignore[no-untyped-call]
        return cast(BinaryIO, reader)
    if compression == "zstd":
        zstd_reader = zstandard.ZstdDecompressor().stream_reader(
            fileobj, read_across_frames=True, closefd=False
        )
        return cast(BinaryIO, zstd_reader)
    if compression == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(fileobj, mode="rb"))
    if compression == "xz":
        return cast(BinaryIO, lzma.LZMAFile(fileobj, mode="rb"))
    if compression == "none":
        return fileobj
    raise ImageFormatError(
        f"unknown compression {compression!r}",
        hint="layers are gzip, zstd or uncompressed; archives may also be bzip2 or xz",
    )
