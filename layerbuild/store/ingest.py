"""An ingest: a blob being written into the content store (content.py), hashed as it goes.

Bytes go to ``ingest/<pid>-<random>.tmp``; ``commit(expected)`` fsyncs, checks the digest (and
the size it was promised), makes the file read-only and renames it to ``blobs/sha256/<hex>``.
The module docstring of content.py has the whole lifecycle and what a failed write leaves.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from layerbuild.digest import Digest
from layerbuild.errors import DigestMismatch, SizeMismatch, StoreError
from layerbuild.hosterrors import at_path, local_write_error
from layerbuild.store.crashsafe import fsync_dir

if TYPE_CHECKING:
    from layerbuild.store.content import ContentStore

_CHUNK = 1 << 20
_BLOB_MODE = 0o444


class Ingest(io.BufferedIOBase):
    """A blob being written: a write-only, hashing file object (see the module docstring)."""

    def __init__(self, store: ContentStore) -> None:
        super().__init__()
        self._store = store
        self._tmp = store.ingest_dir / f"{os.getpid()}-{os.urandom(8).hex()}.tmp"
        # read-write: commit reads the file back after a failed write
        self._fd = os.open(self._tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._hash = hashlib.sha256()
        self._size = 0
        self._faulted = False  # a write failed: commit re-reads the file before trusting it
        self._result: tuple[Digest, int] | None = None

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._fd < 0:
            raise ValueError("write to a committed or aborted ingest")
        view = memoryview(data).cast("B")
        written = 0
        try:
            while written < len(view):
                written += os.write(self._fd, view[written:])
        except OSError as e:
            # A full disk shows here, often after part of the chunk went in: the file must never
            # keep bytes the running hash did not see (issue 18: a resumed download then
            # committed a file of the wrong content under the right digest). A HostError, not
            # an OSError, so that no network retry takes it for a dropped connection.
            self._rewind()
            error = at_path(e, self._tmp)
            raise local_write_error(error, store=str(self._store.root)) from None
        self._hash.update(view)
        self._size += len(view)
        return len(view)

    def _rewind(self) -> None:
        """Cut the file back to the bytes hashed so far; abort when even that fails."""
        self._faulted = True
        try:
            os.ftruncate(self._fd, self._size)
            os.lseek(self._fd, self._size, os.SEEK_SET)
        except OSError:
            self.abort()

    def running_hash(self) -> Any:
        """A copy of the sha256 of what was written so far (pack_layer reads the blob's
        digest here instead of hashing every byte a second time)."""
        return self._hash.copy()

    def commit(
        self, expected: Digest | None = None, *, size: int | None = None
    ) -> tuple[Digest, int]:
        """Verify and publish the blob; returns (digest, size). `size`: the size it was promised
        (a descriptor's). DigestMismatch (SizeMismatch) stores nothing."""
        if self._result is not None:
            return self._result
        if self._fd < 0:
            raise StoreError("commit of an aborted ingest")
        try:
            os.fsync(self._fd)
            on_disk = os.fstat(self._fd).st_size
        except OSError as e:
            self.abort()
            raise local_write_error(at_path(e, self._tmp), store=str(self._store.root)) from None
        actual = Digest.from_hash(self._hash)
        if size is not None and self._size != size:
            self.abort()
            raise SizeMismatch(
                str(expected or "?"),
                str(actual),
                what=f"blob {expected or actual}: {self._size} bytes, expected {size}",
            )
        if on_disk != self._size or self._faulted:
            self._check_file(actual, on_disk)
        os.close(self._fd)
        self._fd = -1
        if expected is not None and actual != expected:
            self._tmp.unlink(missing_ok=True)
            raise DigestMismatch(expected, actual, what=f"blob of {self._size} bytes")
        os.chmod(self._tmp, _BLOB_MODE)
        self._publish(self._store.path(actual))
        self._result = (actual, self._size)
        return self._result

    def _check_file(self, actual: Digest, on_disk: int) -> None:
        """The file must hold exactly what was hashed: after a failed write, or when its size
        is not the bytes written, read it back (the one case where commit reads the file)."""
        wrong = None
        if on_disk != self._size:
            wrong = f"holds {on_disk} bytes, not the {self._size} written"
        else:
            found = hashlib.sha256()
            offset = 0
            while chunk := os.pread(self._fd, _CHUNK, offset):
                found.update(chunk)
                offset += len(chunk)
            if Digest.from_hash(found) != actual:
                wrong = f"hashes to {Digest.from_hash(found)}, not to what was written ({actual})"
        if wrong is not None:
            self.abort()
            raise StoreError(
                f"ingest file {self._tmp} in the store at {self._store.root} {wrong}",
                hint="the file system lost a write (check free space and the kernel log, "
                "dmesg); nothing was stored: run the command again",
            )

    def _publish(self, target: Path) -> None:
        # a blob already there is kept unless its size shows it corrupt (a store written by an
        # older layerbuild that missed issue 18): this verified copy then replaces it
        with contextlib.suppress(FileNotFoundError):
            if target.stat().st_size == self._size:
                self._tmp.unlink(missing_ok=True)
                return
        try:
            os.rename(self._tmp, target)
        except FileNotFoundError as e:
            # the temp file vanished: another process judged this ingest stale
            raise StoreError(
                f"ingest file {self._tmp} disappeared before commit",
                hint="another layerbuild cleaned it as stale; run the command again",
            ) from e
        fsync_dir(target.parent)

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._result is None:
            with contextlib.suppress(OSError):  # a temp file left is cleaned by the next open
                self._tmp.unlink()

    def close(self) -> None:
        self.abort()
        super().close()

    def __enter__(self) -> Ingest:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
