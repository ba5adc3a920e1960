"""The previous layer's uncompressed tar as a splice reads it: forward only, decompressed ahead
on a thread of its own.

Decompressing the old blob is the biggest single cost of a spliced pack (a 400 MB tar inflates
in about a second); isal, zstandard and hashlib release the GIL, so a reader thread inflates
while the tar writer's thread matches entries and the pack's thread compresses. The bytes a
splice may still copy are kept from `base` on; everything before it is dropped.
"""

from __future__ import annotations

import queue
import threading
from typing import BinaryIO

_READ = 1 << 20
_AHEAD = 8  # pieces read ahead: bounds the reader's memory to ~8 MiB


class SpliceSourceError(Exception):
    """The previous layer's stream is shorter than its index says, or cannot be read: the
    layer must be packed from its files (never shown to a user)."""


class _Reader(threading.Thread):
    """Reads the stream to its end (so the readers below it check what they read) in pieces;
    an empty piece ends it, an exception is handed over as it is."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(name="splice-read", daemon=True)
        self._stream = stream
        self.pieces: queue.Queue[bytes | BaseException] = queue.Queue(_AHEAD)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                piece: bytes | BaseException = self._stream.read(_READ)
            except Exception as e:  # any decoder's or the store's error: pack from the files
                piece = SpliceSourceError(f"cannot read the previous layer: {e}")
            if not self._put(piece) or not isinstance(piece, bytes) or not piece:
                return

    def _put(self, piece: bytes | BaseException) -> bool:
        while not self.stopped.is_set():
            try:
                self.pieces.put(piece, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


class OldStream:
    """The old tar from `base` on; `position` is how far it was consumed."""

    def __init__(self, stream: BinaryIO) -> None:
        self._reader = _Reader(stream)
        self._started = False
        self._buffer = bytearray()  # the old stream's bytes from `base` on
        self.base = 0
        self._ended = False

    @property
    def position(self) -> int:
        return self.base

    def _more(self) -> bool:
        """One more piece into the buffer; False at the stream's end."""
        if self._ended:
            return False
        if not self._started:
            self._started = True
            self._reader.start()
        piece = self._reader.pieces.get()
        if isinstance(piece, BaseException):
            self._ended = True
            raise piece
        if not piece:
            self._ended = True
            return False
        self._buffer += piece
        return True

    def peek(self, start: int, size: int) -> bytes:
        """The bytes at [start, start + size), fewer at the stream's end (`start` >= base)."""
        end = start + size
        while self.base + len(self._buffer) < end and self._more():
            pass
        return bytes(self._buffer[start - self.base : end - self.base])

    def take(self, start: int, end: int) -> bytes:
        """The bytes at [start, end), all of them, and drop what lies before `end`."""
        data = self.peek(start, end - start)
        if len(data) != end - start:
            raise SpliceSourceError("the previous layer ends before its index says")
        self.drop(end)
        return data

    def drop(self, upto: int) -> None:
        """Forget the bytes before `upto`, reading past them piece by piece, not all at once."""
        while self.base + len(self._buffer) < upto:
            self.base += len(self._buffer)
            self._buffer.clear()
            if not self._more():
                raise SpliceSourceError("the previous layer ends before its index says")
        del self._buffer[: upto - self.base]
        self.base = upto

    def read(self, size: int) -> bytes:
        return self.take(self.base, self.base + size)

    def drain(self) -> None:
        """Read to the end, so that the reader below checks what it read (the store's digest
        check of the blob; gzip's and zstd's own checksums)."""
        self._buffer.clear()
        while self._more():
            self.base += len(self._buffer)
            self._buffer.clear()

    def close(self) -> None:
        """Stop the reader thread (a pack that failed midway); the stream is the caller's."""
        self._reader.stopped.set()
        if self._started:
            self._reader.join()
