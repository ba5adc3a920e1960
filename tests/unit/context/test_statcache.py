"""StatCache: hits only when every stat field matches and the entry is not racy; a damaged
database is recreated, never believed; several processes may share it."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from layerbuild.context.statcache import RACY_MARGIN_NS, StatCache
from layerbuild.digest import Digest
from layerbuild.errors import ContextError

# Tests of hits use a short racy margin and let files age past it: kernel file timestamps lag
# the wall clock by at most one tick (<= 10 ms at HZ=100), so 50 ms is safe and keeps tests fast.
MARGIN_NS = 50_000_000
AGE_S = 0.1


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _age() -> None:
    """Let the files written so far fall out of the racy window."""
    time.sleep(AGE_S)


def _digest(cache: StatCache, path: Path) -> str:
    return cache.digest(path, os.lstat(path))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store" / "cache" / "stat.db"


@pytest.fixture
def cache(db: Path) -> StatCache:
    return StatCache(db, racy_margin_ns=MARGIN_NS)


def test_unchanged_file_is_a_hit_and_persists(tmp_path: Path, db: Path, cache: StatCache) -> None:
    f = _write(tmp_path / "a", b"alpha")
    _age()
    assert _digest(cache, f) == _sha(b"alpha")
    assert _digest(cache, f) == _sha(b"alpha")
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.bytes_hashed) == (1, 1, 5)
    cache.close()
    with StatCache(db, racy_margin_ns=MARGIN_NS) as again:
        assert _digest(again, f) == _sha(b"alpha")
        assert again.stats().hits == 1 and again.stats().misses == 0


def test_same_size_content_change_with_mtime_restored_misses(
    tmp_path: Path, cache: StatCache
) -> None:
    """touch -r / rsync -t / os.utime(ns=...) put mtime back; ctime still moves."""
    f = _write(tmp_path / "a", b"alpha")
    _age()
    before = os.lstat(f)
    assert _digest(cache, f) == _sha(b"alpha")
    _write(f, b"ALPHA")
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    _age()  # so only the ctime comparison, not the racy rule, can catch it
    after = os.lstat(f)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert _digest(cache, f) == _sha(b"ALPHA")
    assert cache.stats().misses == 2


def test_racy_entry_is_rehashed_and_stays_racy(tmp_path: Path, db: Path) -> None:
    """Hashed within the margin of its mtime, an entry proves nothing, even with every stat
    field equal: a same-tick write after the read would leave them all unchanged."""
    f = _write(tmp_path / "a", b"alpha")
    st = os.lstat(f)
    # a margin of an hour: the file is brand new however slowly a loaded machine runs this
    with StatCache(db, racy_margin_ns=3600 * 10**9) as cache:
        assert cache.digest(f, st) == _sha(b"alpha")
        assert cache.digest(f, st) == _sha(b"alpha")
        assert cache.digest(f, st) == _sha(b"alpha")
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.racy) == (0, 3, 2)
    assert RACY_MARGIN_NS == 2_000_000_000
    # a margin that covers every record made above, however late a loaded machine made them,
    # and a wait until a record made now falls outside it
    margin = time.time_ns() - st.st_ctime_ns + MARGIN_NS
    while time.time_ns() - st.st_ctime_ns <= margin + MARGIN_NS:
        _age()
    # once recorded long enough after its last change, the same entry is trusted
    with StatCache(db, racy_margin_ns=margin) as cache:
        assert cache.digest(f, st) == _sha(b"alpha")
        assert cache.digest(f, st) == _sha(b"alpha")
        assert (cache.stats().hits, cache.stats().racy) == (1, 1)


def test_file_replaced_by_rename_misses(tmp_path: Path, cache: StatCache) -> None:
    f = _write(tmp_path / "a", b"alpha")
    _age()
    old = os.lstat(f)
    assert _digest(cache, f) == _sha(b"alpha")
    new = _write(tmp_path / "a.new", b"omega")
    os.utime(new, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(new, f)
    _age()
    assert os.lstat(f).st_ino != old.st_ino
    assert _digest(cache, f) == _sha(b"omega")
    assert cache.stats().misses == 2


def test_mode_change_misses(tmp_path: Path, cache: StatCache) -> None:
    f = _write(tmp_path / "a", b"alpha")
    _age()
    _digest(cache, f)
    f.chmod(0o600)
    _age()
    assert _digest(cache, f) == _sha(b"alpha")
    assert (cache.stats().hits, cache.stats().misses) == (0, 2)
    assert _digest(cache, f) == _sha(b"alpha")
    assert cache.stats().hits == 1


def test_stat_from_another_file_is_not_trusted(tmp_path: Path, cache: StatCache) -> None:
    """The key is the path, the proof is the stat: a stale stat for the path cannot hit."""
    a = _write(tmp_path / "a", b"alpha")
    b = _write(tmp_path / "b", b"bravo")
    _age()
    _digest(cache, a)
    with pytest.raises(ContextError, match="replaced"):
        cache.digest(a, os.lstat(b))


def test_one_changed_file_among_many_is_the_only_one_rehashed(
    tmp_path: Path, cache: StatCache
) -> None:
    files = [_write(tmp_path / f"f{i}", f"file {i}".encode() * 100) for i in range(400)]
    _age()
    items = [(f, os.lstat(f)) for f in files]
    first = cache.digests(items)
    assert first == [_sha(f"file {i}".encode() * 100) for i in range(400)]
    assert cache.digests(items) == first
    assert (cache.stats().hits, cache.stats().misses) == (400, 400)
    _write(files[123], b"changed")
    _age()
    items = [(f, os.lstat(f)) for f in files]
    second = cache.digests(items)
    assert second[123] == _sha(b"changed")
    assert second[:123] + second[124:] == first[:123] + first[124:]
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (799, 401)


def test_size_change_since_stat_is_an_error(tmp_path: Path, cache: StatCache) -> None:
    f = _write(tmp_path / "a", b"alpha")
    st = os.lstat(f)
    _write(f, b"alphabet")
    with pytest.raises(ContextError, match="changed size"):
        cache.digest(f, st)


def test_garbage_database_is_recreated_with_a_warning(tmp_path: Path, db: Path) -> None:
    f = _write(tmp_path / "a", b"alpha")
    _age()
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not an SQLite database, it is garbage" * 100)
    notes: list[str] = []
    with StatCache(db, racy_margin_ns=MARGIN_NS, note=notes.append) as cache:
        assert _digest(cache, f) == _sha(b"alpha")
        assert _digest(cache, f) == _sha(b"alpha")
        assert cache.stats().hits == 1
    assert len(notes) == 1 and "corrupt" in notes[0] and str(db) in notes[0]


def test_damaged_row_is_never_believed(tmp_path: Path, db: Path) -> None:
    """A digest altered behind SQLite's back (its checksum no longer matches) is a miss."""
    f = _write(tmp_path / "a", b"alpha")
    _age()
    with StatCache(db, racy_margin_ns=MARGIN_NS) as cache:
        _digest(cache, f)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE stat SET digest = ?", (hashlib.sha256(b"evil").digest(),))
    conn.close()
    notes: list[str] = []
    with StatCache(db, racy_margin_ns=MARGIN_NS, note=notes.append) as cache:
        assert _digest(cache, f) == _sha(b"alpha")
        assert cache.stats().misses == 1
        assert _digest(cache, f) == _sha(b"alpha")
        assert cache.stats().hits == 1
    assert len(notes) == 1 and "checksum" in notes[0]


def test_unusable_location_still_gives_right_answers(tmp_path: Path) -> None:
    f = _write(tmp_path / "a", b"alpha")
    blocker = _write(tmp_path / "file", b"")
    notes: list[str] = []
    with StatCache(blocker / "stat.db", note=notes.append) as cache:
        assert _digest(cache, f) == _sha(b"alpha")
        assert _digest(cache, f) == _sha(b"alpha")
        assert cache.stats().misses == 2
    assert len(notes) == 1 and "cannot be created" in notes[0]


_WORKER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from layerbuild.context.statcache import StatCache
    db, root, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    files = sorted(root.iterdir())
    notes = []
    with StatCache(db, racy_margin_ns=50_000_000, note=notes.append) as cache:
        for _ in range(rounds):
            digests = cache.digests([(f, os.lstat(f)) for f in files])
            # the concurrent writer thrashes entries; answers must stay right
            for f, d in zip(files, digests):
                assert d == "sha256:" + __import__("hashlib").sha256(f.read_bytes()).hexdigest()
    assert not notes, notes
    print(cache.stats().hits)
    """
)


def test_two_processes_share_the_cache(tmp_path: Path, db: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    for i in range(300):
        _write(root / f"f{i:03d}", os.urandom(64 + i))
    _age()
    StatCache(db).close()  # create it once so both start from the same schema
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(db), str(root), "8"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert int(out) > 0  # each process got hits, from its own or the other's entries
    with StatCache(db, racy_margin_ns=MARGIN_NS) as cache:
        items = [(f, os.lstat(f)) for f in sorted(root.iterdir())]
        assert cache.digests(items) == [_sha(f.read_bytes()) for f, _ in items]
        assert cache.stats().hits == 300


# --- selection digests (a COPY's fingerprint → its sources digest) ---------------------------

SELECTION = hashlib.sha256(b"a selection").digest()
SOURCES = Digest(_sha(b"the sources"))


def test_selection_digest_is_remembered_across_instances(db: Path) -> None:
    now = time.time_ns()
    with StatCache(db, racy_margin_ns=MARGIN_NS) as cache:
        assert cache.selection_digest(SELECTION) is None
        assert cache.remember_selection(SELECTION, SOURCES, newest_ns=now - 10**9, taken_ns=now)
    with StatCache(db, racy_margin_ns=MARGIN_NS) as cache:
        assert cache.selection_digest(SELECTION) == SOURCES
        assert cache.selection_digest(hashlib.sha256(b"another").digest()) is None


def test_racy_selection_is_not_remembered(db: Path) -> None:
    """An entry changed within the margin of the moment it was stat'ed could change again in
    the same timestamp tick without changing the fingerprint."""
    now = time.time_ns()
    with StatCache(db, racy_margin_ns=MARGIN_NS) as cache:
        assert not cache.remember_selection(
            SELECTION, SOURCES, newest_ns=now - MARGIN_NS // 2, taken_ns=now
        )
        assert cache.selection_digest(SELECTION) is None


def test_damaged_selection_row_is_never_believed(db: Path) -> None:
    now = time.time_ns()
    with StatCache(db, racy_margin_ns=MARGIN_NS) as cache:
        cache.remember_selection(SELECTION, SOURCES, newest_ns=0, taken_ns=now)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE selection SET digest = ?", (hashlib.sha256(b"evil").digest(),))
    conn.close()
    notes: list[str] = []
    with StatCache(db, racy_margin_ns=MARGIN_NS, note=notes.append) as cache:
        assert cache.selection_digest(SELECTION) is None
    assert len(notes) == 1 and "checksum" in notes[0]
