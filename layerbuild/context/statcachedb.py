"""The stat cache's SQLite file: its schema, how a row is keyed and checksummed, connecting to
it (WAL, busy timeout), write transactions, and removing a corrupt file.

Apart from statcache.py, which owns when a remembered digest may be trusted (equal stat, not
racy) and how failures turn into re-hashing: this is the storage format those rules sit on.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import sys
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from layerbuild.context.filesource import FilePath
from layerbuild.context.lstat import Stat

BUSY_TIMEOUT_S = 10.0
_SCHEMA_VERSION = 1
FIELDS = struct.Struct("<9q")
CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat (
    path BLOB PRIMARY KEY,
    dev INTEGER NOT NULL, ino INTEGER NOT NULL, mode INTEGER NOT NULL,
    uid INTEGER NOT NULL, gid INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    digest BLOB NOT NULL, recorded_ns INTEGER NOT NULL, crc INTEGER NOT NULL
) WITHOUT ROWID
"""
# a COPY's selection fingerprint (context/fingerprint.py, chained with its step's inputs) →
# the sources digest it led to: lets a no-change rebuild skip building and digesting Changes
_SELECTION_SCHEMA = """
CREATE TABLE IF NOT EXISTS selection (
    fingerprint BLOB PRIMARY KEY, digest BLOB NOT NULL, crc INTEGER NOT NULL
) WITHOUT ROWID
"""
COLUMNS = "path, dev, ino, mode, uid, gid, size, mtime_ns, ctime_ns, digest, recorded_ns, crc"

# (dev, ino, mode, uid, gid, size, mtime_ns, ctime_ns) as stored: signed 64-bit
Key = tuple[int, int, int, int, int, int, int, int]


class Entry(NamedTuple):  # a tuple: built once per looked-up row, so cheap matters
    key: Key
    digest: bytes
    recorded_ns: int


class RowCorrupt(Exception):
    """A row whose checksum does not match its fields."""


def _i64(value: int) -> int:
    """st_ino and st_dev are unsigned 64-bit; SQLite integers are signed."""
    return value - (1 << 64) if value >= 1 << 63 else value


def stat_key(st: Stat) -> Key:
    return (
        _i64(st.st_dev),
        _i64(st.st_ino),
        st.st_mode,
        st.st_uid,
        st.st_gid,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


def db_key(path: FilePath) -> bytes:
    """The absolute path as bytes (file names need not be UTF-8). Not normalized: another
    spelling of the same file is merely another entry, checked against its stat like any."""
    text = os.fspath(path)
    return os.fsencode(text if text.startswith("/") else os.path.abspath(text))


def db_keys(items: Sequence[tuple[FilePath, object]]) -> list[bytes]:
    """`db_key` of each item's path; an absolute str (what a walk of the context gives) is
    encoded as os.fsencode would, without its call per path."""
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    return [
        path.encode(encoding, errors)
        if isinstance(path, str) and path.startswith("/")
        else db_key(path)
        for path, _ in items
    ]


def crc(path: bytes, key: Key, digest: bytes, recorded_ns: int) -> int:
    return zlib.crc32(digest, zlib.crc32(FIELDS.pack(*key, recorded_ns), zlib.crc32(path)))


def connect(db_path: Path) -> sqlite3.Connection:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # a lost tail of the WAL after a power cut only forgets digests; the cache stays valid
        conn.execute("PRAGMA synchronous=NORMAL")
        with transaction(conn):
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version not in (0, _SCHEMA_VERSION):
                conn.execute("DROP TABLE IF EXISTS stat")
            conn.execute(_SCHEMA)
            conn.execute(_SELECTION_SCHEMA)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE takes the write lock up front, so the busy timeout applies to it
    rather than failing a deferred transaction half-way."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def remove_db(db_path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{db_path}{suffix}")


_SIGNED, _WRAP = 1 << 63, 1 << 64  # st_dev and st_ino as stored (_i64)
_LOOKUP_CHUNK = 500  # bound parameters per SELECT ... IN (...)
_RANGE_MIN = 2000  # from this many paths on, one range scan of their common directory


def scan(conn: sqlite3.Connection, wanted: Collection[bytes]) -> Iterable[tuple[Any, ...]]:
    """The rows of the `wanted` paths, and maybe others. Many paths below one directory (a big
    COPY) are read with one range scan of that directory, cheaper than binding them all."""
    if len(wanted) >= _RANGE_MIN:
        lo, hi = min(wanted), max(wanted)  # sorted, so their common prefix is everyone's
        n = 0
        while n < min(len(lo), len(hi)) and lo[n] == hi[n]:
            n += 1
        top = lo[: lo.rfind(b"/", 0, n) + 1]
        if len(top) > 1:
            query = f"SELECT {COLUMNS} FROM stat WHERE path >= ? AND path < ?"
            # every path below `top` sorts between "top/" and "top0" ("0" follows "/")
            return conn.execute(query, (top, top[:-1] + b"0"))
    return _chunks(conn, list(wanted))


def _chunks(conn: sqlite3.Connection, unique: list[bytes]) -> Iterator[tuple[Any, ...]]:
    for start in range(0, len(unique), _LOOKUP_CHUNK):
        chunk = unique[start : start + _LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(f"SELECT {COLUMNS} FROM stat WHERE path IN ({marks})", chunk)


def trusted_rows(
    rows: Iterable[tuple[Any, ...]], wanted: Mapping[bytes, Stat], margin: int
) -> tuple[dict[bytes, bytes], int]:
    """Of `rows` (COLUMNS), the raw digests of the `wanted` paths whose row matches their lstat
    and was not racy (recorded within `margin` ns of its mtime or ctime), and how many of the
    paths have a row at all. No Entry per row: at 100,000 files the probe was a tenth of a
    rebuild. A row whose checksum fails raises RowCorrupt."""
    trusted: dict[bytes, bytes] = {}
    seen = 0
    fields, crc32 = FIELDS.pack, zlib.crc32
    for row in rows:
        path: bytes = row[0]
        st = wanted.get(path)
        if st is None:
            continue
        seen += 1
        key: Key = row[1:9]
        digest: bytes = row[9]
        recorded_ns: int = row[10]
        # `crc` and `_i64` written out: they were half of the loop's cost
        check = crc32(digest, crc32(fields(*key, recorded_ns), crc32(path)))
        if check != row[11] or len(digest) != 32:
            raise RowCorrupt(path)
        if max(key[6], key[7]) >= recorded_ns - margin:
            continue  # racy
        dev, ino = st.st_dev, st.st_ino
        if key == (
            dev - _WRAP if dev >= _SIGNED else dev,
            ino - _WRAP if ino >= _SIGNED else ino,
            st.st_mode,
            st.st_uid,
            st.st_gid,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
        ):
            trusted[path] = digest
    return trusted, seen
