"""StatCache: remembered content digests of context files, vouched for by their stat.

A rebuild must not re-read a 200 MB context whose files did not change, and must never hand
back the digest of bytes that are no longer there. An entry maps an absolute path to the
lstat fields (dev, ino, mode, uid, gid, size, mtime_ns, ctime_ns) seen just before the file was
read, the sha256 read, and ``recorded_ns``, the wall clock just before reading. A lookup is a
hit only when all of this holds:

- every stat field is equal. ctime is what makes this safe: ``touch -r``, ``rsync -t`` and some
  git checkouts put mtime (and size) back after changing the bytes, but no user-space call can
  set ctime, and every write or utime moves it. dev+ino catch a file replaced by rename.
- the entry is not *racy* (git's rule, Documentation/technical/racy-git.txt): if mtime or ctime
  is at or after ``recorded_ns - racy_margin_ns``, a write in the same timestamp tick after the
  read would leave every stat field unchanged, so the entry proves nothing and is re-hashed
  (and recorded again, with a new ``recorded_ns``, which lets it become clean once the file is
  older than the margin). The default margin is 2 s: FAT/exFAT keep mtime in 2 s steps, and
  kernel file timestamps lag the clock we read by up to a tick.

Every row carries a CRC-32 of its fields, so a silently damaged page reads as a corrupt cache,
never as a wrong digest. A corrupt database file is removed and recreated with a warning
(through ``note``); any other SQLite failure (a full disk, a lock held past the busy timeout)
turns the cache off for this instance or skips one write: the cache can cost a re-hash but never
fail a build. Several builds may share the file: WAL mode (readers never wait), a busy timeout
and short write transactions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerbuild.context.filesource import FileDigest, FilePath, hash_files
from layerbuild.context.lstat import Stat
from layerbuild.context.statcachedb import (
    BUSY,
    COLUMNS,
    CORRUPT,
    Entry,
    Key,
    RowCorrupt,
    connect,
    crc,
    db_key,
    db_keys,
    remove_db,
    scan,
    stat_key,
    transaction,
    trusted_rows,
)
from layerbuild.digest import Digest

RACY_MARGIN_NS = 2_000_000_000
_WRITE_CHUNK = 2000  # rows per write transaction, so no build holds the write lock for long



@dataclass(frozen=True, slots=True)
class StatCacheStats:
    """What a StatCache did since it was opened; ``racy`` misses are counted in ``misses``."""

    hits: int = 0
    misses: int = 0
    racy: int = 0
    bytes_hashed: int = 0
    selections: int = 0  # quick COPY keys looked up (`selection_digest`)
    listed: int = 0  # of those, keyed from the prefetched context listing


class StatCache:
    """(path, lstat) → sha256 of the file's bytes, persisted in SQLite at ``db_path``.

    Thread-safe; one instance per build is enough. ``note`` receives warnings meant for the
    user (default: this module's logger). ``workers`` bounds the hashing threads.
    """

    def __init__(
        self,
        db_path: Path,
        *,
        racy_margin_ns: int = RACY_MARGIN_NS,
        workers: int | None = None,
        note: Callable[[str], None] | None = None,
        stats_file: Path | None = None,
    ) -> None:
        self.db_path = db_path
        self._stats_file = stats_file  # where close() appends this instance's counters
        self._margin = racy_margin_ns
        self._workers = workers
        self._note = note or _log_warning
        self._lock = threading.Lock()
        self._stats = StatCacheStats()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._writers: list[threading.Thread] = []
        with self._lock:
            self._conn = self._open()

    # --- public ---------------------------------------------------------------------------

    def digest(self, path: FilePath, st: Stat) -> Digest:
        """The sha256 of the regular file ``path`` whose lstat is ``st``."""
        return self.digests([(path, st)])[0]

    def digests(self, items: Sequence[tuple[FilePath, Stat]]) -> list[Digest]:
        """The sha256 of each (path, lstat), in order; misses are hashed in parallel.

        Paths are made absolute (not resolved: the caller's path is the one read). ContextError
        when a file vanished, was replaced, or changed size since ``st`` or while being read.
        """
        keys = [db_key(path) for path, _ in items]
        with self._lock:
            found = self._lookup(keys)
        out: list[Digest | None] = [None] * len(items)
        missed: list[int] = []
        racy = 0
        for i, (key, (_, st)) in enumerate(zip(keys, items, strict=True)):
            entry = found.get(key)
            if entry is not None and entry.key == stat_key(st):
                if not self._is_racy(entry):
                    out[i] = Digest.of_sha256(entry.digest)
                    continue
                racy += 1
            missed.append(i)
        recorded_ns = time.time_ns()  # before any read: an earlier mark only makes more racy
        hashed = hash_files([items[i] for i in missed], workers=self._workers)
        for i, result in zip(missed, hashed, strict=True):
            out[i] = result.digest
        with self._lock:
            self._record([(keys[i], r) for i, r in zip(missed, hashed, strict=True)], recorded_ns)
            self._count(len(items) - len(missed), len(missed), racy, hashed)
        return [d for d in out if d is not None]

    def probe(
        self, items: Sequence[tuple[FilePath, Stat]]
    ) -> tuple[list[Digest | None], int]:
        """Cached digests that may be trusted (None where a file must be read), and how many
        of the paths this cache has never seen at all (a context never built before)."""
        keys = db_keys(items)
        wanted = dict(zip(keys, (st for _, st in items), strict=True))
        if len(wanted) != len(keys):  # a path twice, maybe with two lstats: one by one
            return self._probe_each(keys, items)
        with self._lock:
            trusted, seen = self._trusted(wanted)
        return [trusted.get(key) for key in keys], len(keys) - seen

    def _probe_each(
        self, keys: list[bytes], items: Sequence[tuple[FilePath, Stat]]
    ) -> tuple[list[Digest | None], int]:
        with self._lock:
            found = self._lookup(keys)
        out: list[Digest | None] = []
        for key, (_, st) in zip(keys, items, strict=True):
            entry = found.get(key)
            ok = entry is not None and entry.key == stat_key(st) and not self._is_racy(entry)
            out.append(Digest.of_sha256(entry.digest) if ok and entry else None)
        return out, sum(1 for key in keys if key not in found)

    def remember(
        self, items: Sequence[tuple[FilePath, Stat, Digest]], recorded_ns: int
    ) -> None:
        """Record digests computed elsewhere (while packing a layer) from reads that started
        at `recorded_ns`, under the lstat taken before the read. No second lstat is needed: a
        file written during the read has an mtime/ctime after `recorded_ns`, so the racy rule
        re-reads it next time, and one whose stat moved no longer matches the recorded one."""
        results = [(db_key(path), FileDigest(digest, st, True)) for path, st, digest in items]
        with self._lock:
            self._record(results, recorded_ns)
            self._count(0, len(results), 0, [r for _, r in results])

    def selection_digest(self, fingerprint: bytes, *, listed: bool = False) -> Digest | None:
        """The sources digest recorded for a selection fingerprint, if any (`listed`: the
        fingerprint came from the prefetched context listing, for the counters)."""
        with self._lock, self._guard():
            s = self._stats
            self._stats = dataclasses.replace(
                s, selections=s.selections + 1, listed=s.listed + listed
            )
            if self._conn is None:
                return None
            row = self._conn.execute(
                "SELECT digest, crc FROM selection WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
            if row is None:
                return None
            if zlib.crc32(row[0], zlib.crc32(fingerprint)) != row[1]:
                raise RowCorrupt
            return Digest("sha256:" + bytes(row[0]).hex())
        return None

    def remember_selection(
        self, fingerprint: bytes, digest: Digest, *, newest_ns: int, taken_ns: int
    ) -> bool:
        """Record `digest` for a selection taken (lstat'ed) at wall clock `taken_ns` whose
        newest mtime/ctime is `newest_ns`; refused (False) when that is within the racy margin,
        as a same-tick write after the lstat would leave the fingerprint unchanged."""
        if newest_ns >= taken_ns - self._margin:
            return False
        raw = bytes.fromhex(digest.hex)
        row = (fingerprint, raw, zlib.crc32(raw, zlib.crc32(fingerprint)))
        with self._lock, self._guard():
            if self._conn is None:
                return False
            with transaction(self._conn):
                self._conn.execute(
                    "INSERT OR REPLACE INTO selection (fingerprint, digest, crc) VALUES (?, ?, ?)",
                    row,
                )
            return True
        return False

    def stats(self) -> StatCacheStats:
        with self._lock:
            return self._stats

    def remember_later(
        self, items: Sequence[tuple[FilePath, Stat, Digest]], recorded_ns: int
    ) -> None:
        """`remember` on a background thread: the build goes on packing and keying while the
        rows are written; `close` waits for it, so nothing is lost."""
        worker = threading.Thread(
            target=self.remember, args=(list(items), recorded_ns), name="statcache-remember"
        )
        worker.start()
        self._writers.append(worker)

    def close(self) -> None:
        for worker in self._writers:
            worker.join()
        self._writers.clear()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if not self._closed:
                self._closed = True
                _write_stats(self._stats, self._stats_file)

    def __enter__(self) -> StatCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the rules ------------------------------------------------------------------------

    def _is_racy(self, entry: Entry) -> bool:
        newest = max(entry.key[6], entry.key[7])  # mtime_ns, ctime_ns
        return newest >= entry.recorded_ns - self._margin

    def _count(self, hits: int, misses: int, racy: int, hashed: list[FileDigest]) -> None:
        s = self._stats
        self._stats = dataclasses.replace(
            s,
            hits=s.hits + hits,
            misses=s.misses + misses,
            racy=s.racy + racy,
            bytes_hashed=s.bytes_hashed + sum(r.st.st_size for r in hashed),
        )

    # --- SQLite (callers hold self._lock) -------------------------------------------------

    def _trusted(self, wanted: dict[bytes, Stat]) -> tuple[dict[bytes, Digest], int]:
        """`_lookup` and the rules of `digests` in one pass over the rows, for a big COPY's
        probe (statcachedb.trusted_rows)."""
        with self._guard():
            if self._conn is None:
                return {}, 0
            found, seen = trusted_rows(self._scan(wanted.keys()), wanted, self._margin)
            new_digest = str.__new__  # the hex of a checked row: Digest's parse is per-row cost
            return {p: new_digest(Digest, "sha256:" + d.hex()) for p, d in found.items()}, seen
        return {}, 0  # the guard swallowed a failure: everything is a miss

    def _lookup(self, keys: list[bytes]) -> dict[bytes, Entry]:
        found: dict[bytes, Entry] = {}
        with self._guard():
            if self._conn is None:
                return found
            for row in self._rows(set(keys)):
                path: bytes = row[0]
                key: Key = row[1:9]
                digest: bytes = row[9]
                recorded_ns: int = row[10]
                if crc(path, key, digest, recorded_ns) != row[11] or len(digest) != 32:
                    raise RowCorrupt(path)
                found[path] = Entry(key, digest, recorded_ns)
            return found
        return {}  # the guard swallowed a failure: everything is a miss

    def _rows(self, wanted: Collection[bytes]) -> Iterator[tuple[Any, ...]]:
        """The rows of the `wanted` paths."""
        for row in self._scan(wanted):
            if row[0] in wanted:
                yield row

    def _scan(self, wanted: Collection[bytes]) -> Iterable[tuple[Any, ...]]:
        assert self._conn is not None
        return scan(self._conn, wanted)

    def _record(self, results: list[tuple[bytes, FileDigest]], recorded_ns: int) -> None:
        rows = []
        for path, result in results:
            if not result.stable:
                continue  # changed while read: the digest is of no stat in particular
            key = stat_key(result.st)
            raw = bytes.fromhex(result.digest.hex)
            rows.append((path, *key, raw, recorded_ns, crc(path, key, raw, recorded_ns)))
        with self._guard():
            for start in range(0, len(rows), _WRITE_CHUNK):
                if self._conn is None:
                    return
                with transaction(self._conn):
                    self._conn.executemany(
                        f"INSERT OR REPLACE INTO stat ({COLUMNS}) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rows[start : start + _WRITE_CHUNK],
                    )

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn a database failure into a cache miss (and a repair), never a build failure."""
        try:
            yield
        except RowCorrupt:
            self._reset("a row failed its checksum")
        except sqlite3.DatabaseError as exc:
            self._failed(exc)

    def _failed(self, exc: sqlite3.DatabaseError) -> None:
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code in CORRUPT:
            self._reset(str(exc))
        elif code in BUSY:
            self._note(f"stat cache {self.db_path} is busy ({exc}); files will be re-hashed")
        else:
            self._note(f"stat cache {self.db_path} disabled for this build: {exc}")
            self._close_quietly()

    def _reset(self, why: str) -> None:
        self._note(
            f"stat cache {self.db_path} is corrupt ({why}); recreating it "
            "(the next build re-hashes its context once)"
        )
        self._close_quietly()
        remove_db(self.db_path)
        self._conn = self._open(retry=False)

    def _close_quietly(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _open(self, *, retry: bool = True) -> sqlite3.Connection | None:
        try:
            return connect(self.db_path)
        except sqlite3.DatabaseError as exc:
            code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
            if retry and code in CORRUPT:
                self._note(f"stat cache {self.db_path} is corrupt ({exc}); recreating it")
                remove_db(self.db_path)
                return self._open(retry=False)
            self._note(f"stat cache {self.db_path} cannot be used ({exc}); hashing everything")
            return None
        except OSError as exc:
            self._note(f"stat cache {self.db_path} cannot be created ({exc.strerror})")
            return None


def _write_stats(stats: StatCacheStats, target: Path | None) -> None:
    """Append this instance's counters as one JSON line to `target`, when given (the CLI's
    $LAYERBUILD_STATCACHE_STATS): how benchmarks see how many files a rebuild re-hashed,
    without a report field."""
    if target is None:
        return
    line = json.dumps(dataclasses.asdict(stats)) + "\n"
    with contextlib.suppress(OSError), open(target, "a", encoding="ascii") as f:
        f.write(line)


def _log_warning(message: str) -> None:
    import logging  # only when there is something to say: start-up pays every import

    logging.getLogger(__name__).warning(message)
