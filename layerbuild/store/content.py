"""The content store: blobs named by their sha256, written so that a crash never shows half a blob.

Vocabulary and lifecycle (containerd's content store, umoci's oci/cas):

- An *ingest* is a write in progress: bytes go to ``ingest/<pid>-<random>.tmp`` while their
  sha256 is computed. ``commit(expected)`` fsyncs, checks the digest, makes the file read-only
  and renames it to ``blobs/sha256/<hex>``; the rename is atomic, so a blob path either does not
  exist or holds the whole, verified content. Leaving the ``with`` block without ``commit()``
  aborts and deletes the temp file.
- Committing content that is already stored succeeds and drops the temp file: as umoci's PutBlob
  documents, success means "the content is stored", not "this call stored it". Two builds that
  produce the same layer at the same time therefore both succeed.
- A write that fails (no space, quota, I/O error) raises a HostError naming the temp file and
  the store, and first cuts the file back to the bytes hashed so far (or aborts the ingest when
  even that fails): the file never holds a partial chunk the running hash skipped. ``commit``
  checks the size it was promised and that the file holds as many bytes as were written; after
  a failed write it hashes the file again. So no failure, retried or not, can publish a blob
  whose bytes do not hash to its name (issue 18).
- Readers verify: ``read_bytes`` hashes before returning, ``open`` returns a reader that raises
  DigestMismatch when it reaches the end (or on close, after hashing what was not read), so a
  blob corrupted on disk is noticed by whoever uses it. The corrupt blob is then removed (not
  by fsck, which reports first; not in a read-only store), so that the next pull or build
  writes it again; the error names where it came from (``sources/<hex>``) when known.

What a crash leaves behind: at most a temp file under ``ingest/``, invisible to readers. Its name
carries the writer's pid; the next ContentStore over the same root deletes temp files whose
writer is dead or that have not been written for an hour.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.errors import BlobNotFound, DigestMismatch, SizeMismatch, StoreError
from layerbuild.hosterrors import at_path, local_write_error
from layerbuild.store.verifying import VerifyingRaw

STALE_INGEST_SECONDS = 3600
_CHUNK = 1 << 20
_BLOB_MODE = 0o444


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable (POSIX needs the directory itself fsynced)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def left_by_dead_processes(directory: Path, prefix: str) -> list[Path]:
    """Entries of `directory` named `<prefix><pid>-...` whose process is gone: the private
    work directories a killed build left behind."""
    found: list[Path] = []
    for entry in os.scandir(directory):
        if not entry.name.startswith(prefix):
            continue
        pid_text = entry.name[len(prefix) :].partition("-")[0]
        if pid_text.isdigit() and pid_alive(int(pid_text)):
            continue
        found.append(Path(entry.path))
    return found


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (possibly owned by another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _require_sha256(d: Digest) -> None:
    if d.algorithm != "sha256":
        raise StoreError(
            f"digest {d} uses {d.algorithm}; the local store keeps sha256 content only",
            hint="re-push or re-export the image with sha256 digests",
        )


class Ingest(io.BufferedIOBase):
    """A blob being written: a write-only, hashing file object (see the module docstring)."""

    def __init__(self, store: ContentStore) -> None:
        super().__init__()
        self._store = store
        self._tmp = store.ingest_dir / f"{os.getpid()}-{secrets.token_hex(8)}.tmp"
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


class ContentStore:
    """Blobs under ``<root>/blobs/sha256`` (an OCI image layout), written through ingests."""

    def __init__(self, root: Path, *, clean: bool = True, writable: bool = True) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        # fsck opens without cleaning: it reports leftovers and corrupt blobs before removing
        # any; a read-only store removes nothing
        self.drop_corrupt = clean and writable
        if not writable:
            return
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)
        if clean:
            self.clean_stale_ingests()

    def clean_stale_ingests(self, *, max_age: float = STALE_INGEST_SECONDS) -> list[Path]:
        """Delete temp files of killed writers (dead pid) or of writers idle for `max_age`."""
        removed: list[Path] = []
        now = time.time()
        for entry in os.scandir(self.ingest_dir):
            pid_text = entry.name.partition("-")[0]
            owner = int(pid_text) if pid_text.isdigit() else -1
            try:
                idle = now - entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            if owner != os.getpid() and (not pid_alive(owner) or idle > max_age):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
        return removed

    def ingest(self) -> Ingest:
        return Ingest(self)

    def put_bytes(self, data: bytes, expected: Digest | None = None) -> Digest:
        digest = sha256_bytes(data)
        if (expected is None or digest == expected) and self._stored_size(digest) == len(data):
            return digest  # already stored: a rebuild's config and manifest cost no fsync
        with self.ingest() as w:
            w.write(data)
            return w.commit(expected)[0]

    def path(self, d: Digest) -> Path:
        _require_sha256(d)
        return self.blob_dir / d.hex

    def has(self, d: Digest) -> bool:
        return self.path(d).is_file()

    def _stored_size(self, d: Digest) -> int | None:
        try:
            return self.path(d).stat().st_size
        except FileNotFoundError:
            return None

    def size(self, d: Digest) -> int:
        try:
            return self.path(d).stat().st_size
        except FileNotFoundError:
            raise self._missing(d) from None

    def open(self, d: Digest) -> BinaryIO:
        """A buffered reader that raises DigestMismatch at EOF or on close if the blob is bad."""
        try:
            raw = VerifyingRaw(self.path(d), d, self.corrupt)
        except FileNotFoundError:
            raise self._missing(d) from None
        return io.BufferedReader(raw, buffer_size=_CHUNK)

    def read_bytes(self, d: Digest) -> bytes:
        try:
            data = self.path(d).read_bytes()
        except FileNotFoundError:
            raise self._missing(d) from None
        actual = Digest("sha256:" + hashlib.sha256(data).hexdigest())
        if actual != d:
            raise self.corrupt(d, actual)
        return data

    def check(self, d: Digest, size: int, *, verify: bool) -> str | None:
        """What is wrong with the stored blob `d` that should hold `size` bytes (None: nothing,
        or it is not there): its size always, its digest when `verify`."""
        try:
            have = self.size(d)
            if have != size:
                return f"holds {have} bytes, not {size}"
            if verify:
                with self.open(d) as f:
                    while f.read(_CHUNK):
                        pass
        except BlobNotFound:
            return None
        except DigestMismatch as e:
            return f"hashes to {e.actual}"
        return None

    def corrupt(self, d: Digest, actual: Digest) -> DigestMismatch:
        """The error for a stored blob that does not hash to its name. The blob is dropped (not
        by fsck, which reports first), so that the next pull or build writes it again instead of
        every command failing on it forever."""
        source = self._source(d)
        dropped = False
        if self.drop_corrupt:
            with contextlib.suppress(OSError):
                self.path(d).unlink()
                dropped = True
        error = DigestMismatch(d, actual, what=f"stored blob {d} in {self.root}")
        fix = (
            f"pull its image from {source} again (or rebuild it)"
            if source
            else "pull or rebuild the image that uses it"
        )
        if dropped:
            error.hint = f"the blob was corrupt on disk and has been removed from the store: {fix}"
        else:
            error.hint = f"the blob is corrupt on disk: `layerbuild fsck --repair`, then {fix}"
        return error

    def _source(self, d: Digest) -> str | None:
        """The registry/repository the blob was last seen in (registry/sources.py writes
        ``sources/<hex>``), to say where to get it again."""
        try:
            lines = (self.root / "sources" / d.hex).read_text().split()
        except (OSError, UnicodeDecodeError):
            return None
        return lines[-1] if lines else None

    def delete(self, d: Digest) -> bool:
        """Remove a blob; False when it was not there."""
        try:
            self.path(d).unlink()
        except FileNotFoundError:
            return False
        return True

    def digests(self) -> Iterator[Digest]:
        """Every stored blob (file names that are not sha256 hex are ignored)."""
        for entry in os.scandir(self.blob_dir):
            if len(entry.name) == 64 and all(c in "0123456789abcdef" for c in entry.name):
                yield Digest("sha256:" + entry.name)

    def _missing(self, d: Digest) -> BlobNotFound:
        return BlobNotFound(
            f"blob {d} is not in the store at {self.root}",
            hint="the store may have been garbage-collected or edited by hand; "
            "pull or rebuild the image",
        )
