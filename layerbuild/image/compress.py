"""Layer compression: changes → compressed blob in one pass (reading back: decompress.py).

``pack_layer`` runs two stages in two threads so that they overlap: the tar writer plus the
sha256 of the uncompressed stream (the diff_id) in a producer thread, the compressor plus the
sha256 of the compressed bytes (the digest) and the sink in the calling thread. hashlib, isal
and zstandard release the GIL on large buffers, so the stages really run side by side and
packing costs little more than compressing.

Compressed output is deterministic: gzip is written as a raw deflate stream from isal inside a
gzip header we write ourselves (mtime 0, no name, OS byte 255 "unknown", as Go's compress/gzip
writes it), zstd as one frame with a checksum and no content size.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import queue
import struct
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import zstandard
from isal import isal_zlib

from layerbuild.digest import Digest
from layerbuild.image.changes import Change
from layerbuild.image.chunkpipe import Cancelled, ChunkPipe
from layerbuild.image.manifest import Layer
from layerbuild.image.mediatypes import layer_media_type
from layerbuild.image.tarsplice import EntryLog, Splice
from layerbuild.image.tarwriter import Writable, write_tar

GZIP_DEFAULT_LEVEL = isal_zlib.ISAL_DEFAULT_COMPRESSION
GZIP_LEVELS = range(isal_zlib.ISAL_BEST_SPEED, isal_zlib.ISAL_BEST_COMPRESSION + 1)
ZSTD_DEFAULT_LEVEL = 3
# magic, method deflate, no flags, mtime 0, no extra flags, OS 255 (unknown)
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_GZIP_WORKERS = 2  # deflate threads: with the tar writer, enough to fill two cores
_DEFLATE_WINDOW = 32 * 1024
_SWITCH_INTERVAL = 0.001  # seconds; see pack_layer
_QUEUE_DEPTH = 8  # chunks in flight: bounds memory to ~16 MiB per pack


class BlockCache(Protocol):
    """Gzip blocks deflated before, by `block_key` (store/blockcache.py keeps them)."""

    def get(self, key: bytes) -> tuple[bytes, bytes] | None:
        """(block bytes, their sha256), or None."""

    def deflated(self, nbytes: int) -> None:
        """A block of `nbytes` input bytes was not found and is deflated (counted for
        benchmarks: what a rebuild compressed again)."""


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """Where one deflate block of a gzip blob lies, for reuse by a later pack."""

    key: bytes  # block_key of what it compresses
    offset: int  # in the blob
    length: int
    sha256: bytes  # of the block's compressed bytes


def block_key(level: int, window: bytes, data: bytes) -> bytes:
    """What a block's deflated bytes depend on: isal's level, the 32 KiB dictionary, the data.
    isal is deterministic, so equal keys give equal blocks."""
    h = hashlib.sha256(b"layerbuild.gzip-block.v1\n")
    h.update(struct.pack("<BI", level, len(window)))
    h.update(window)
    h.update(data)
    return h.digest()


class _Block(NamedTuple):
    data: bytes  # deflated
    key: bytes  # block_key, or b"" without a cache
    sha256: bytes  # of data, with a cache


class Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...
    def close(self) -> None: ...


class _GzipEncoder:
    """gzip written as independently deflated blocks (pigz's layout), every header byte ours.

    Each chunk of the tar stream is deflated on a worker thread with the previous chunk's last
    32 KiB as its dictionary and ends in a sync flush; an empty final block closes the stream.
    Blocks are compressed side by side (isal releases the GIL) yet the bytes depend only on the
    input: the chunking is the tar writer's, never the scheduler's. With a BlockCache, a block
    whose key it holds is taken from there instead of deflated again, and `index` tells where
    each block landed, for the cache to learn this blob's blocks.
    """

    def __init__(
        self, level: int, workers: int = _GZIP_WORKERS, blocks: BlockCache | None = None
    ) -> None:
        self._level = level
        self._blocks = blocks
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, "layer-gzip")
        self._ahead = 2 * workers
        self._pending: collections.deque[concurrent.futures.Future[_Block]] = collections.deque()
        self._window = b""
        self._crc = 0
        self._size = 0
        self._out = bytearray(_GZIP_HEADER)
        self._offset = len(_GZIP_HEADER)
        self.index: list[BlockRecord] = []

    def _deflate(self, data: bytes, window: bytes) -> _Block:
        """One block, on a worker thread: the hashing a cache needs runs as parallel as
        deflating does."""
        key = b""
        if self._blocks is not None:
            key = block_key(self._level, window, data)
            cached = self._blocks.get(key)
            if cached is not None:
                return _Block(cached[0], key, cached[1])
            self._blocks.deflated(len(data))
        if window:
            z = isal_zlib.compressobj(self._level, isal_zlib.DEFLATED, -15, 9, 0, window)
        else:
            z = isal_zlib.compressobj(self._level, isal_zlib.DEFLATED, -15)
        block: bytes = z.compress(data) + z.flush(isal_zlib.Z_SYNC_FLUSH)
        return _Block(block, key, hashlib.sha256(block).digest() if key else b"")

    def _take(self) -> None:
        block = self._pending.popleft().result()
        if block.key:
            self.index.append(BlockRecord(block.key, self._offset, len(block.data), block.sha256))
        self._offset += len(block.data)
        self._out += block.data

    def compress(self, data: bytes) -> bytes:
        self._crc = isal_zlib.crc32(data, self._crc)
        self._size += len(data)
        self._pending.append(self._pool.submit(self._deflate, data, self._window))
        self._window = data[-_DEFLATE_WINDOW:]
        while self._pending and (len(self._pending) > self._ahead or self._pending[0].done()):
            self._take()
        out = bytes(self._out)
        self._out.clear()
        return out

    def flush(self) -> bytes:
        while self._pending:
            self._take()
        final: bytes = isal_zlib.compressobj(self._level, isal_zlib.DEFLATED, -15).flush()
        self._out += final + struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF)
        out = bytes(self._out)
        self._out.clear()
        self.close()
        return out

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)


class _ZstdEncoder:
    def __init__(self, z: zstandard.ZstdCompressionObj) -> None:
        self._z = z

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def flush(self) -> bytes:
        return self._z.flush()

    def close(self) -> None:
        pass


class _Identity:
    def compress(self, data: bytes) -> bytes:
        return data

    def close(self) -> None:
        pass

    def flush(self) -> bytes:
        return b""


def make_encoder(compression: str, level: int | None, blocks: BlockCache | None) -> Encoder:
    if compression == "gzip":
        level = GZIP_DEFAULT_LEVEL if level is None else level
        if level not in GZIP_LEVELS:
            raise ValueError(
                f"gzip level {level} is out of range {GZIP_LEVELS.start}-"
                f"{GZIP_LEVELS.stop - 1} (isal levels)"
            )
        return _GzipEncoder(level, blocks=blocks)
    if compression == "zstd":
        params = zstandard.ZstdCompressor(
            level=ZSTD_DEFAULT_LEVEL if level is None else level,
            write_checksum=True,
            write_content_size=False,
        )
        return _ZstdEncoder(params.compressobj())
    if compression == "none":
        return _Identity()
    raise ValueError(f"unknown layer compression {compression!r}: use gzip, zstd or none")


class _NoHash:
    def update(self, data: bytes) -> None:
        pass


class _Producer(threading.Thread):
    def __init__(
        self,
        changes: Iterable[Change],
        source_date_epoch: int | None,
        digests: dict[str, Digest] | None = None,
        known: Mapping[str, Digest] | None = None,
        splice: Splice | None = None,
        log: EntryLog | None = None,
    ) -> None:
        super().__init__(name="layer-tar", daemon=True)
        self.chunks: queue.Queue[bytes | None] = queue.Queue(_QUEUE_DEPTH)
        self.cancelled = threading.Event()
        self.pipe = ChunkPipe(self.chunks, self.cancelled)
        self.error: BaseException | None = None
        self._changes = changes
        self._epoch = source_date_epoch
        self._digests = digests
        self._known = known
        self._splice = splice
        self._log = log

    def run(self) -> None:
        try:
            write_tar(
                self._changes,
                self.pipe,
                source_date_epoch=self._epoch,
                digests=self._digests,
                known=self._known,
                splice=self._splice,
                log=self._log,
            )
            self.pipe.flush()
        except Cancelled:
            return
        except BaseException as e:  # handed to the consumer thread, which re-raises it
            self.error = e
        try:
            self.pipe.put(None)  # end of stream, also after an error
        except Cancelled:
            return


def pack_layer(
    changes: Iterable[Change],
    sink: Writable,
    *,
    compression: str,
    source_date_epoch: int | None = None,
    level: int | None = None,
    digests: dict[str, Digest] | None = None,
    known: Mapping[str, Digest] | None = None,
    blocks: BlockCache | None = None,
    index: list[BlockRecord] | None = None,
    splice: Splice | None = None,
    log: EntryLog | None = None,
) -> Layer:
    """Write ``changes`` as a compressed layer blob to ``sink`` and describe it.

    ``compression`` is 'gzip' (isal levels 0-3, default 2), 'zstd' (default level 3) or 'none'.
    For gzip, ``blocks`` lends deflate blocks packed before and ``index`` receives where each
    block of this blob lies (for the caller to add to its cache once the blob is stored).
    ``digests``, ``known``, ``splice`` and ``log``: as for ``tarwriter.write_tar``. Errors of
    the tar writer (e.g. LayerContentError, tarsplice.SpliceSourceError) are re-raised here;
    the sink then holds a partial blob that the caller must discard (an uncommitted ingest).
    """
    encoder = make_encoder(compression, level, blocks)
    producer = _Producer(changes, source_date_epoch, digests, known, splice, log)
    # a sink that hashes what it is given (a store ingest) spares hashing the blob twice
    sink_hash = getattr(sink, "running_hash", None)
    digest = _NoHash() if sink_hash is not None else hashlib.sha256()
    diff_id = hashlib.sha256()
    size = 0
    # The consumer spends ~2 ms per chunk inside the compressor without the GIL and then must
    # win it back from the Python-heavy tar producer; with the default 5 ms switch interval it
    # waits most of that time (a GIL convoy) and gzip packing ran at half its speed. A shorter
    # interval for the duration of the pack lets the two stages really overlap.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, _SWITCH_INTERVAL))
    producer.start()
    try:
        while (chunk := producer.chunks.get()) is not None:
            # the diff_id is hashed here, not in the tar thread: this thread mostly waits on
            # the compressor, while the tar writer is the busiest stage
            diff_id.update(chunk)
            out = encoder.compress(chunk)
            if out:
                digest.update(out)
                sink.write(out)
                size += len(out)
        if producer.error is not None:
            raise producer.error
        out = encoder.flush()
        digest.update(out)
        sink.write(out)
        size += len(out)
        if index is not None and isinstance(encoder, _GzipEncoder):
            index.extend(encoder.index)
    finally:
        producer.cancelled.set()
        producer.join()
        encoder.close()
        sys.setswitchinterval(interval)
    return Layer(
        diff_id=Digest.from_hash(diff_id),
        digest=Digest.from_hash(sink_hash() if sink_hash is not None else digest),
        size=size,
        media_type=layer_media_type(compression),
    )
