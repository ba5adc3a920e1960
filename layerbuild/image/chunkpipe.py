"""The tar writer's output inside a pack (compress.py): its writes gathered into chunks, cut
where the content says, and queued for the compressor."""

from __future__ import annotations

import queue
import threading

from isal import isal_zlib

from layerbuild.image.tarwriter import CHUNK

# content-defined chunks of small entries (see ChunkPipe): about 512 KiB to 1 MiB
_MIN_CHUNK = 512 * 1024
_MAX_CHUNK = 2 * 1024 * 1024
_CUT_MASK = (1 << 5) - 1


class Cancelled(Exception):
    """Raised inside the producer thread when the consumer has given up."""


class ChunkPipe:
    """The tar writer's output: gathers writes into chunks and queues them.

    Chunks are cut where the content says, never at fixed offsets of the stream: before an
    entry whose header hashes to a multiple of 2**_CUT_BITS once _MIN_CHUNK bytes are buffered
    (or _MAX_CHUNK, whatever the headers), and around large file data, which comes in pieces
    at offsets of its file. A file that changes, grows or shrinks then changes the chunk that
    holds it (and the next, whose dictionary it is), not every chunk after it, so the gzip
    blocks of the rest can be reused from an earlier blob (store/blockcache.py).
    """

    def __init__(self, chunks: queue.Queue[bytes | None], cancelled: threading.Event) -> None:
        self._chunks = chunks
        self._cancelled = cancelled
        self._buffer = bytearray()

    def entry_start(self, header: bytes) -> None:
        buffered = len(self._buffer)
        if buffered >= _MAX_CHUNK or (
            buffered >= _MIN_CHUNK and isal_zlib.crc32(header) & _CUT_MASK == 0
        ):
            self.flush()

    def write(self, data: bytes, /) -> int:
        if len(data) >= CHUNK // 2:
            self.flush()
            self._emit(bytes(data))
        else:
            self._buffer += data
            if len(self._buffer) >= 2 * _MAX_CHUNK:
                self.flush()  # one entry's small writes alone (a long run of headers)
        return len(data)

    def write_run(self, data: bytes, starts: list[tuple[int, int]], /) -> None:
        """Entries copied from a previous layer in one piece (splicerun.py), each starting at
        (offset in `data`, its header's length) and each one small write: cut exactly where
        `entry_start` and `write` of each, one by one, would cut, copying per chunk instead."""
        view, buffer, done = memoryview(data), self._buffer, 0
        for at, header_size in starts:
            buffered = len(buffer) + at - done
            if buffered >= _MAX_CHUNK or (
                buffered >= _MIN_CHUNK
                and isal_zlib.crc32(view[at : at + header_size]) & _CUT_MASK == 0
            ):
                buffer += view[done:at]
                self.flush()
                done = at
        buffer += view[done:]

    def flush(self) -> None:
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()

    def _emit(self, chunk: bytes) -> None:
        self.put(chunk)

    def put(self, item: bytes | None) -> None:
        """A bounded put that gives up (raising Cancelled) once the consumer has stopped."""
        while True:
            if self._cancelled.is_set():
                raise Cancelled
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
