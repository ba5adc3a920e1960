"""pack_layer: digests verified independently, deterministic blobs, errors; decompression."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import threading

import pytest
import zstandard

from layerbuild.errors import LayerContentError
from layerbuild.image import mediatypes as mt
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.compress import pack_layer
from layerbuild.image.decompress import detect_compression, open_layer
from layerbuild.image.tarwriter import write_tar
from tests.support.random_layer import opener_for, random_layer


def decompress(blob: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.decompress(blob)
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read()
    return blob


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_layer_digests_match_an_independent_computation(compression: str) -> None:
    changes = random_layer(2, big_size=5 << 20)
    sink = io.BytesIO()
    layer = pack_layer(changes, sink, compression=compression)
    blob = sink.getvalue()
    plain = io.BytesIO()
    write_tar(changes, plain)
    assert decompress(blob, compression) == plain.getvalue()
    assert layer.diff_id == "sha256:" + hashlib.sha256(plain.getvalue()).hexdigest()
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.size == len(blob)
    assert layer.media_type == mt.layer_media_type(compression)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_blobs_are_deterministic(compression: str) -> None:
    first = pack_layer(random_layer(4), io.BytesIO(), compression=compression)
    again = pack_layer(random_layer(4), io.BytesIO(), compression=compression)
    assert first == again


def test_gzip_header_is_fixed() -> None:
    sink = io.BytesIO()
    pack_layer([], sink, compression="gzip")
    # magic, deflate, no flags (so no name), mtime 0, no extra flags, OS 255 as Go writes
    assert sink.getvalue()[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    assert gzip.decompress(sink.getvalue()) == b"\0" * 1024


def test_zstd_frame_has_a_checksum_and_no_content_size() -> None:
    sink = io.BytesIO()
    pack_layer(random_layer(1), sink, compression="zstd")
    params = zstandard.get_frame_parameters(sink.getvalue())
    assert params.has_checksum and params.content_size == zstandard.CONTENTSIZE_UNKNOWN


def test_levels_are_checked_and_change_the_output() -> None:
    with pytest.raises(ValueError, match="gzip level 9 is out of range"):
        pack_layer([], io.BytesIO(), compression="gzip", level=9)
    with pytest.raises(ValueError, match="unknown layer compression"):
        pack_layer([], io.BytesIO(), compression="lz4")
    changes = random_layer(6)
    fast = pack_layer(changes, io.BytesIO(), compression="zstd", level=1)
    slow = pack_layer(changes, io.BytesIO(), compression="zstd", level=19)
    assert fast.diff_id == slow.diff_id and fast.digest != slow.digest


def test_writer_errors_reach_the_caller_and_stop_the_thread() -> None:
    before = threading.active_count()
    bad = Change("f", ChangeKind.FILE, size=100, content=opener_for(b"short"))
    with pytest.raises(LayerContentError, match="expected 100 bytes"):
        pack_layer(random_layer(1) + [bad], io.BytesIO(), compression="gzip")
    assert threading.active_count() == before


def test_sink_errors_stop_the_producer() -> None:
    class FullDisk:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

    before = threading.active_count()
    big = Change("big", ChangeKind.FILE, size=64 << 20, content=opener_for(bytes(64 << 20)))
    with pytest.raises(OSError, match="No space left"):
        pack_layer([big], FullDisk(), compression="none")
    assert threading.active_count() == before


@pytest.mark.parametrize(
    ("compress", "name"),
    [
        (gzip.compress, "gzip"),
        (lambda d: zstandard.ZstdCompressor().compress(d), "zstd"),
        (bz2.compress, "bzip2"),
        (lzma.compress, "xz"),
        (lambda d: d, "none"),
    ],
)
def test_detect_and_open_every_compression(compress: object, name: str) -> None:
    data = b"layer bytes " * 10_000
    blob = compress(data)  # type: ignore[operator]
    assert detect_compression(blob[:8]) == name
    assert open_layer(io.BytesIO(blob), name).read() == data


def test_open_layer_reads_concatenated_members_and_frames() -> None:
    gz = gzip.compress(b"one") + gzip.compress(b"two")
    assert open_layer(io.BytesIO(gz), "gzip").read() == b"onetwo"
    cctx = zstandard.ZstdCompressor()
    zs = cctx.compress(b"one") + cctx.compress(b"two")
    assert open_layer(io.BytesIO(zs), "zstd").read() == b"onetwo"
