"""BlockCache: the deflate blocks of gzip layers already in the store, found by what they compress.

A rebuild after a small change packs a big COPY layer again: the same tar stream but for one
file. The gzip writer (image/compress.py) cuts the stream into content-defined chunks and
deflates each with the previous chunk's last 32 KiB as its dictionary; a chunk's block depends
only on (level, dictionary, data), its `block_key`. This cache maps keys to where such a block
lies in a blob of the store, so the writer copies those bytes instead of deflating again, and
the new blob is byte for byte what deflating everything would have written.

``<store>/cache/blocks.db`` (SQLite, WAL, shared by concurrent builds) holds, per key, the blob
digest, offset, length and the sha256 of the block's bytes. A hit is checked against that
sha256 when read, so a damaged row or blob costs a deflate, never a wrong layer; rows whose
blob gc removed are dropped when met. Any SQLite failure turns the cache off for the build.
With `stats_file` (the CLI's $LAYERBUILD_BLOCKCACHE_STATS), close() appends the build's counters
there as one JSON line, for benchmarks: blocks reused, and blocks and bytes deflated again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.digest import Digest

if TYPE_CHECKING:
    from layerbuild.image.compress import BlockRecord

BUSY_TIMEOUT_S = 10.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    key BLOB PRIMARY KEY, blob TEXT NOT NULL, offset INTEGER NOT NULL,
    length INTEGER NOT NULL, sha256 BLOB NOT NULL
) WITHOUT ROWID
"""
# a blob's rows in one query (`preload`, and gc's `forget_blobs`)
_BLOB_INDEX = "CREATE INDEX IF NOT EXISTS blocks_by_blob ON blocks (blob)"



class BlockCache:
    """Thread-safe (the gzip workers ask it); one instance per build."""

    def __init__(
        self,
        db_path: Path,
        blob_path: Callable[[Digest], Path],
        *,
        note: Callable[[str], None] | None = None,
        stats_file: Path | None = None,
    ) -> None:
        self.db_path = db_path
        self._blob_path = blob_path
        self._note = note or _warn
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}
        self.hits = 0
        self.deflated_blocks = 0
        self.deflated_bytes = 0  # input bytes of the blocks deflated, not found here
        self._stats_file = stats_file
        self._conn: sqlite3.Connection | None = None
        self._tried = False  # opened on first use: a build that packs nothing never does
        # rows read ahead (`preload`): key -> (blob, offset, length, sha256)
        self._preloaded: dict[bytes, tuple[str, int, int, bytes]] = {}

    def _db(self) -> sqlite3.Connection | None:
        """The connection (callers hold the lock); None once it failed."""
        if not self._tried:
            self._tried = True
            try:
                self._conn = _connect(self.db_path)
            except (sqlite3.Error, OSError) as e:
                self._note(
                    f"block cache {self.db_path} cannot be used ({e}); layers are fully deflated"
                )
        return self._conn

    def get(self, key: bytes) -> tuple[bytes, bytes] | None:
        """(the block's bytes, their sha256) for a key recorded before, read from its blob and
        checked against the recorded sha256. Read and checked outside the lock: the gzip
        workers ask side by side."""
        with self._lock:
            row = self._preloaded.get(key) or self._query(
                "SELECT blob, offset, length, sha256 FROM blocks WHERE key = ?", key
            )
            if row is None:
                return None
            blob, offset, length, sha = row
            fd = self._open(blob)
        data = _pread(fd, offset, length) if fd is not None else None
        if data is None or hashlib.sha256(data).digest() != sha:
            with self._lock:
                self._forget(key)
            return None
        with self._lock:
            self.hits += 1
        return data, sha

    def deflated(self, nbytes: int) -> None:
        with self._lock:
            self.deflated_blocks += 1
            self.deflated_bytes += nbytes

    def preload(self, blob: Digest) -> None:
        """Read the rows of the stored blob `blob` in one query: a layer packed again from it
        (a spliced COPY) finds most of its blocks there, without a query per block."""
        with self._lock:
            conn = self._db()
            if conn is None:
                return
            try:
                rows = conn.execute(
                    "SELECT key, offset, length, sha256 FROM blocks WHERE blob = ?", (str(blob),)
                ).fetchall()
            except sqlite3.Error as e:
                self._failed(e)
                return
            for key, offset, length, sha in rows:
                self._preloaded[bytes(key)] = (str(blob), int(offset), int(length), bytes(sha))

    def record(self, blob: Digest, index: Sequence[BlockRecord]) -> None:
        """Remember where the blocks of the stored blob `blob` lie."""
        rows = [(r.key, str(blob), r.offset, r.length, r.sha256) for r in index]
        with self._lock:
            conn = self._db() if rows else None
            if conn is None:
                return
            try:
                with conn:
                    conn.executemany(
                        "INSERT OR REPLACE INTO blocks (key, blob, offset, length, sha256) "
                        "VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
            except sqlite3.Error as e:
                self._failed(e)

    def forget_blobs(self, blobs: Sequence[Digest]) -> None:
        """Drop the rows of blobs gc removed (a row is also dropped when met, but a blob whose
        blocks never come back would keep its rows for ever)."""
        with self._lock:
            conn = self._db()
            if conn is None:
                return
            try:
                with conn:
                    conn.executemany(
                        "DELETE FROM blocks WHERE blob = ?", [(str(b),) for b in blobs]
                    )
            except sqlite3.Error as e:
                self._failed(e)

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._stats_file is not None:
                self._write_stats(self._stats_file)
                self._stats_file = None  # once, however often close() is called

    def __enter__(self) -> BlockCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- callers hold self._lock -------------------------------------------------------------

    def _write_stats(self, target: Path) -> None:
        counters = {
            "hits": self.hits,
            "deflated_blocks": self.deflated_blocks,
            "deflated_bytes": self.deflated_bytes,
        }
        with contextlib.suppress(OSError), open(target, "a", encoding="ascii") as f:
            f.write(json.dumps(counters) + "\n")

    def _query(self, sql: str, key: bytes) -> tuple[str, int, int, bytes] | None:
        conn = self._db()
        if conn is None:
            return None
        try:
            row = conn.execute(sql, (key,)).fetchone()
        except sqlite3.Error as e:
            self._failed(e)
            return None
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]), bytes(row[3]))

    def _open(self, blob: str) -> int | None:
        """A descriptor of the blob, kept open until close()."""
        fd = self._fds.get(blob)
        if fd is None:
            try:
                fd = os.open(self._blob_path(Digest(blob)), os.O_RDONLY | os.O_CLOEXEC)
            except (OSError, ValueError):
                return None  # the blob is gone (gc), or the row names no valid digest
            self._fds[blob] = fd
        return fd

    def _forget(self, key: bytes) -> None:
        self._preloaded.pop(key, None)
        if self._conn is None:
            return
        try:
            with self._conn:
                self._conn.execute("DELETE FROM blocks WHERE key = ?", (key,))
        except sqlite3.Error as e:
            self._failed(e)

    def _failed(self, e: sqlite3.Error) -> None:
        self._note(f"block cache {self.db_path} disabled for this build: {e}")
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


def _pread(fd: int, offset: int, length: int) -> bytes | None:
    try:
        data = os.pread(fd, length, offset)
    except OSError:
        return None
    return data if len(data) == length else None


def _connect(db_path: Path) -> sqlite3.Connection:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # a lost row only costs a deflate
        conn.execute(_SCHEMA)
        conn.execute(_BLOB_INDEX)
    except BaseException:
        conn.close()
        raise
    return conn


def _warn(message: str) -> None:
    import logging  # here: logging is slow to import and a build without a problem never warns

    logging.getLogger(__name__).warning(message)
