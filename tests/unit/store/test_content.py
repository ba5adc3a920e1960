from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import stat
import time
from pathlib import Path

import pytest

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.errors import DigestMismatch, StoreError
from layerbuild.store.content import BlobNotFound, ContentStore

DATA = b"hello layer\n" * 1000


def test_put_and_read_back(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    d = cs.put_bytes(DATA)
    assert d == sha256_bytes(DATA)
    assert cs.has(d) and cs.size(d) == len(DATA)
    assert cs.read_bytes(d) == DATA
    assert cs.path(d) == tmp_path / "blobs" / "sha256" / d.hex
    assert stat.S_IMODE(cs.path(d).stat().st_mode) == 0o444
    assert list(cs.digests()) == [d]
    assert os.listdir(tmp_path / "ingest") == []


def test_streaming_ingest_commit(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    with cs.ingest() as w:
        for i in range(0, len(DATA), 777):
            w.write(DATA[i : i + 777])
        assert w.tell() == len(DATA)
        d, size = w.commit(sha256_bytes(DATA))
    assert (d, size) == (sha256_bytes(DATA), len(DATA))
    assert cs.read_bytes(d) == DATA


def test_commit_twice_is_idempotent(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    assert cs.put_bytes(DATA) == cs.put_bytes(DATA, sha256_bytes(DATA))
    assert len(list(cs.digests())) == 1
    assert os.listdir(tmp_path / "ingest") == []


def test_digest_mismatch_stores_nothing(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    wrong = sha256_bytes(b"something else")
    with pytest.raises(DigestMismatch) as err:
        cs.put_bytes(DATA, wrong)
    assert err.value.expected == wrong and err.value.actual == sha256_bytes(DATA)
    assert list(cs.digests()) == []
    assert not cs.has(sha256_bytes(DATA))
    assert os.listdir(tmp_path / "ingest") == []


def test_leaving_without_commit_aborts(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    with pytest.raises(RuntimeError), cs.ingest() as w:
        w.write(DATA)
        assert w.temp_path.exists()
        raise RuntimeError("build step failed")
    with cs.ingest() as w2:
        w2.write(DATA)
    assert list(cs.digests()) == []
    assert os.listdir(tmp_path / "ingest") == []


def test_missing_blob(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    d = sha256_bytes(b"nope")
    assert not cs.has(d)
    for call in (cs.read_bytes, cs.open, cs.size):
        with pytest.raises(BlobNotFound, match="not in the store"):
            call(d)
    assert cs.delete(d) is False


def test_delete(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    d = cs.put_bytes(DATA)
    assert cs.delete(d) is True
    assert not cs.has(d)


def test_sha512_refused(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    with pytest.raises(StoreError, match="sha256 content only"):
        cs.has(Digest("sha512:" + "a" * 128))


def _corrupt(cs: ContentStore, d: Digest) -> None:
    path = cs.path(d)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_open_verifies_at_end(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    d = cs.put_bytes(DATA)
    with cs.open(d) as f:
        assert f.read() == DATA
    _corrupt(cs, d)
    f = cs.open(d)
    with pytest.raises(DigestMismatch):
        f.read()
    f.close()  # already reported; closing does not raise twice
    with pytest.raises(DigestMismatch):
        cs.read_bytes(d)


def test_open_verifies_on_close_after_partial_read(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    d = cs.put_bytes(DATA)
    with cs.open(d) as f:
        f.seek(100)
        assert f.read(10) == DATA[100:110]
    _corrupt(cs, d)
    with pytest.raises(DigestMismatch), cs.open(d) as f:
        assert f.read(5) == DATA[:5]


def _ingest_same_blob(root: str, start: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    cs = ContentStore(Path(root))
    with cs.ingest() as w:
        for i in range(0, len(DATA), 100):
            w.write(DATA[i : i + 100])
        w.commit(sha256_bytes(DATA))


def test_concurrent_ingest_of_same_blob(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_ingest_same_blob, args=(str(tmp_path), start)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    cs = ContentStore(tmp_path)
    assert list(cs.digests()) == [sha256_bytes(DATA)]
    assert cs.read_bytes(sha256_bytes(DATA)) == DATA
    assert os.listdir(tmp_path / "ingest") == []


def _write_forever(root: str, ready: object) -> None:
    cs = ContentStore(Path(root))
    w = cs.ingest()
    w.write(DATA)
    ready.set()  # type: ignore[attr-defined]
    while True:
        w.write(b"x" * 4096)
        time.sleep(0.01)


def test_killed_writer_leaves_no_blob_and_is_cleaned(tmp_path: Path) -> None:
    ContentStore(tmp_path)
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    child = ctx.Process(target=_write_forever, args=(str(tmp_path), ready))
    child.start()
    assert ready.wait(10)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    leftovers = os.listdir(tmp_path / "ingest")
    assert len(leftovers) == 1 and leftovers[0].startswith(f"{child.pid}-")
    assert os.listdir(tmp_path / "blobs" / "sha256") == []
    ContentStore(tmp_path)  # the next open cleans the dead writer's temp file
    assert os.listdir(tmp_path / "ingest") == []


def test_stale_by_age_and_live_writers_kept(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    mine = cs.ingest()
    mine.write(b"in progress")
    other_live = tmp_path / "ingest" / "1-abc.tmp"  # pid 1 is alive
    other_live.write_bytes(b"x")
    old = tmp_path / "ingest" / "1-old.tmp"
    old.write_bytes(b"x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    junk = tmp_path / "ingest" / "garbage"
    junk.write_bytes(b"x")
    removed = cs.clean_stale_ingests()
    assert sorted(p.name for p in removed) == ["1-old.tmp", "garbage"]
    assert mine.temp_path.exists() and other_live.exists()
    mine.commit()
    assert cs.read_bytes(sha256_bytes(b"in progress")) == b"in progress"


def test_blob_content_hash_is_sha256_of_file(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    d = cs.put_bytes(b"")
    assert d.hex == hashlib.sha256(b"").hexdigest()
    assert cs.read_bytes(d) == b""
