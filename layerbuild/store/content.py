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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.errors import (
    BlobNotFound,
    DigestMismatch,
    StoreError,
)
from layerbuild.store.crashsafe import pid_alive
from layerbuild.store.ingest import Ingest
from layerbuild.store.verifying import VerifyingRaw

STALE_INGEST_SECONDS = 3600
_CHUNK = 1 << 20


def _require_sha256(d: Digest) -> None:
    if d.algorithm != "sha256":
        raise StoreError(
            f"digest {d} uses {d.algorithm}; the local store keeps sha256 content only",
            hint="re-push or re-export the image with sha256 digests",
        )


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
