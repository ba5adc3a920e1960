"""A blob file read back, its digest checked once every byte of it has been hashed.

Readers of the content store (content.py) get one of these under a buffer: a blob that was
damaged on disk is noticed by whoever reads it, even partly (close() hashes the rest).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

from layerbuild.digest import Digest
from layerbuild.errors import DigestMismatch

_CHUNK = 1 << 20


class VerifyingRaw(io.RawIOBase):
    """Reads a blob file and checks its digest once all of it has been hashed.

    Bytes are hashed in file order as reads pass over them; seeks are allowed (tarfile skips
    file data), and close() hashes whatever was skipped or left unread, as umoci's
    VerifiedReadCloser does, so a partial reader still learns about corruption.
    `corrupt(expected, actual)` makes the error raised on a mismatch (ContentStore.corrupt,
    which also drops the blob).
    """

    def __init__(
        self, path: Path, expected: Digest, corrupt: Callable[[Digest, Digest], DigestMismatch]
    ) -> None:
        super().__init__()
        self._corrupt = corrupt
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._size = os.fstat(self._fd).st_size
        self._expected = expected
        self._hash = hashlib.sha256()
        self._hashed = 0
        self._pos = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError(22, "negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = os.pread(self._fd, len(view), self._pos)
        n = len(data)
        view[:n] = data
        if self._pos <= self._hashed < self._pos + n:
            self._hash.update(data[self._hashed - self._pos :])
            self._hashed = self._pos + n
        self._pos += n
        if n == 0 and self._hashed >= self._size:
            self._verify()
        return n

    def _verify(self) -> None:
        if self._verified:
            return
        while self._hashed < self._size:
            chunk = os.pread(self._fd, _CHUNK, self._hashed)
            if not chunk:
                break
            self._hash.update(chunk)
            self._hashed += len(chunk)
        self._verified = True
        actual = Digest.from_hash(self._hash)
        if actual != self._expected:
            raise self._corrupt(self._expected, actual)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._verify()
        finally:
            os.close(self._fd)
            super().close()
