from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from layerbuild.digest import Digest, sha256_bytes
from layerbuild.errors import BlobNotFound, DigestMismatch, HostError, SizeMismatch, StoreError
from layerbuild.store import ingest
from layerbuild.store.content import ContentStore

DATA = b"hello layer\n" * 1000


def _ingest_file(root: Path) -> Path:
    """The temp file of this process's one open ingest in the store at `root`."""
    (path,) = (root / "ingest").glob(f"{os.getpid()}-*.tmp")
    return path


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
        assert _ingest_file(tmp_path).exists()
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


def _bad(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def _corrupt(cs: ContentStore, d: Digest) -> None:
    path = cs.path(d)
    path.chmod(0o644)
    path.write_bytes(_bad(path.read_bytes()))


def test_open_verifies_at_end(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    d = cs.put_bytes(DATA)
    with cs.open(d) as f:
        assert f.read() == DATA
    _corrupt(cs, d)
    f = cs.open(d)
    with pytest.raises(DigestMismatch) as err:
        f.read()
    f.close()  # already reported; closing does not raise twice
    # dropped, so that the next pull or build writes it again (issue 18)
    assert "has been removed from the store" in str(err.value)
    assert not cs.has(d)
    with pytest.raises(BlobNotFound):
        cs.read_bytes(d)


def test_corrupt_blob_names_its_source_and_fsck_keeps_it(tmp_path: Path) -> None:
    """A store opened as fsck opens it (no cleaning) reports a corrupt blob and keeps it for
    fsck to report; the hint names the registry/repository the blob came from."""
    cs = ContentStore(tmp_path, clean=False)
    d = cs.put_bytes(DATA)
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / d.hex).write_text("127.0.0.1:5000/team/app\n")
    _corrupt(cs, d)
    with pytest.raises(DigestMismatch) as err:
        cs.read_bytes(d)
    assert "pull its image from 127.0.0.1:5000/team/app again" in str(err.value)
    assert "fsck --repair" in str(err.value)
    assert cs.has(d)
    assert cs.check(d, len(DATA), verify=False) is None
    assert cs.check(d, len(DATA), verify=True) == f"hashes to {sha256_bytes(_bad(DATA))}"
    want = f"holds {len(DATA)} bytes, not {len(DATA) + 1}"
    assert cs.check(d, len(DATA) + 1, verify=False) == want


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
    assert _ingest_file(tmp_path).exists() and other_live.exists()
    mine.commit()
    assert cs.read_bytes(sha256_bytes(b"in progress")) == b"in progress"


def test_blob_content_hash_is_sha256_of_file(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    d = cs.put_bytes(b"")
    assert d.hex == hashlib.sha256(b"").hexdigest()
    assert cs.read_bytes(d) == b""


# -- local write errors (issue 18: a full disk must never leave a blob that does not verify) --


class _FullAfter:
    """os.write that writes half of the chunk it is given once `budget` bytes went in, then
    fails with ENOSPC, as a file system that filled up mid-write does."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.real = os.write

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        if len(data) <= self.budget:
            self.budget -= len(data)
            return self.real(fd, data)
        if self.budget >= 0:
            self.real(fd, bytes(data)[: len(data) // 2])
            self.budget = -1
            return len(data) // 2
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_write_error_cuts_the_file_back_to_what_was_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The half chunk that went in before ENOSPC is cut off: the error names the file in the
    store, and once there is space again the same ingest commits exactly the right bytes."""
    cs = ContentStore(tmp_path)
    chunks = [DATA[i : i + 1000] for i in range(0, len(DATA), 1000)]
    with cs.ingest() as w:
        monkeypatch.setattr(ingest.os, "write", _FullAfter(3000))
        for chunk in chunks[:3]:
            w.write(chunk)
        with pytest.raises(HostError) as err:
            w.write(chunks[3])
        where = _ingest_file(tmp_path)
        assert f"No space left on device: {where} (in the store at {tmp_path})" in str(
            err.value
        )
        assert "free space on that file system" in str(err.value)
        assert where.stat().st_size == 3000 == w.tell()
        monkeypatch.undo()
        for chunk in chunks[3:]:
            w.write(chunk)
        assert w.commit(sha256_bytes(DATA), size=len(DATA)) == (sha256_bytes(DATA), len(DATA))
    assert cs.read_bytes(sha256_bytes(DATA)) == DATA


def test_write_error_that_cannot_be_cut_back_aborts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cs = ContentStore(tmp_path)
    with cs.ingest() as w:
        monkeypatch.setattr(ingest.os, "write", _FullAfter(0))
        monkeypatch.setattr(ingest.os, "ftruncate", _fail_with(errno.EIO))
        with pytest.raises(HostError):
            w.write(DATA)
        monkeypatch.undo()
        assert os.listdir(tmp_path / "ingest") == []
        with pytest.raises(ValueError, match="aborted ingest"):
            w.write(DATA)
        with pytest.raises(StoreError, match="commit of an aborted ingest"):
            w.commit()
    assert list(cs.digests()) == [] and os.listdir(tmp_path / "ingest") == []


def _fail_with(code: int) -> Callable[..., None]:
    def fail(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    return fail


def test_commit_checks_the_promised_size(tmp_path: Path) -> None:
    cs = ContentStore(tmp_path)
    with cs.ingest() as w:
        w.write(DATA)
        with pytest.raises(SizeMismatch) as err:
            w.commit(sha256_bytes(DATA), size=len(DATA) + 1)
    assert f"{len(DATA)} bytes, expected {len(DATA) + 1}" in str(err.value)
    assert list(cs.digests()) == [] and os.listdir(tmp_path / "ingest") == []


def test_commit_refuses_a_file_whose_size_is_not_what_was_written(tmp_path: Path) -> None:
    """Bytes in the file that the hash never saw (what issue 18's resumed download left)."""
    cs = ContentStore(tmp_path)
    with cs.ingest() as w:
        w.write(DATA)
        with open(_ingest_file(tmp_path), "ab") as f:
            f.write(b"stray")
        with pytest.raises(StoreError, match=f"holds {len(DATA) + 5} bytes, not the {len(DATA)}"):
            w.commit(sha256_bytes(DATA))
    assert list(cs.digests()) == [] and os.listdir(tmp_path / "ingest") == []


def test_commit_after_a_write_error_hashes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a write error commit reads the file back: content changed behind the hash's back
    (same size) is refused."""
    cs = ContentStore(tmp_path)
    with cs.ingest() as w:
        w.write(DATA[:1000])
        monkeypatch.setattr(ingest.os, "write", _FullAfter(0))
        with pytest.raises(HostError):
            w.write(DATA[1000:])
        monkeypatch.undo()
        w.write(DATA[1000:])
        with open(_ingest_file(tmp_path), "r+b") as f:
            f.write(b"X")
        with pytest.raises(StoreError, match="hashes to sha256:"):
            w.commit()
    assert list(cs.digests()) == [] and os.listdir(tmp_path / "ingest") == []


def test_a_stored_blob_of_the_wrong_size_is_replaced(tmp_path: Path) -> None:
    """A blob a store kept from before (truncated on disk) does not make a new, verified copy
    count as "already stored"."""
    cs = ContentStore(tmp_path)
    d = cs.put_bytes(DATA)
    cs.path(d).chmod(0o644)
    cs.path(d).write_bytes(DATA[:100])
    assert cs.put_bytes(DATA) == d
    assert cs.read_bytes(d) == DATA
    cs.path(d).chmod(0o644)
    cs.path(d).write_bytes(DATA + b"x")
    with cs.ingest() as w:
        w.write(DATA)
        w.commit(d, size=len(DATA))
    assert cs.read_bytes(d) == DATA
