"""The tar writer's fast paths write the same bytes as its general ones."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from layerbuild.context.filesource import FileSource
from layerbuild.digest import Digest
from layerbuild.errors import ContextError
from layerbuild.image import tarheader, tarwriter
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tarheader import entry_header
from layerbuild.image.tarwriter import write_tar


def _open(path: Path) -> BinaryIO:
    return path.open("rb")


_CASES = [
    Change("a", ChangeKind.FILE, mode=0o644, size=5, mtime=1_700_000_000),
    Change("d", ChangeKind.DIR, mode=0o755, uid=1000, gid=1000, mtime=1),
    Change("s", ChangeKind.SYMLINK, mode=0o777, link="../t" * 25),  # 100-byte link
    Change("h", ChangeKind.HARDLINK, link="a"),
    Change("n" * 100, ChangeKind.FILE, size=(8 << 30) - 1, mtime=(8 << 30) - 1),
    Change("u", ChangeKind.FILE, uid=(1 << 21) - 1, gid=(1 << 21) - 1, mode=0o7777),
]


@pytest.mark.parametrize("change", _CASES, ids=lambda c: c.path[:8])
def test_plain_headers_match_the_general_path(change: Change) -> None:
    size = change.size if change.kind is ChangeKind.FILE else 0
    general = tarheader._header(
        entry_header(change)[:100].rstrip(b"\0"),
        tarheader._TYPEFLAGS[change.kind],
        change.mode & 0o7777,
        change.uid,
        change.gid,
        size,
        change.mtime,
        change.link.encode(),
        0,
        0,
        (),
    )
    assert entry_header(change) == general


def test_file_source_and_opener_content_give_the_same_tar(tmp_path: Path) -> None:
    changes_by_source = []
    changes_by_opener = []
    for i, size in enumerate([0, 1, 511, 512, 513, tarwriter.CHUNK, tarwriter.CHUNK + 3]):
        f = tmp_path / f"f{i}"
        f.write_bytes(os.urandom(size))
        st = os.lstat(f)
        source = FileSource(f, st)
        changes_by_source.append(Change(f.name, ChangeKind.FILE, size=size, content=source))
        changes_by_opener.append(
            Change(f.name, ChangeKind.FILE, size=size, content=functools.partial(_open, f))
        )
    fast, slow = io.BytesIO(), io.BytesIO()
    fast_digests: dict[str, object] = {}
    slow_digests: dict[str, object] = {}
    write_tar(changes_by_source, fast, digests=fast_digests)  # type: ignore[arg-type]
    write_tar(changes_by_opener, slow, digests=slow_digests)  # type: ignore[arg-type]
    assert fast.getvalue() == slow.getvalue()
    assert fast_digests == slow_digests and len(fast_digests) == 7


def test_a_known_digest_is_taken_while_the_file_stays_as_selected(tmp_path: Path) -> None:
    """A file whose digest the key already holds is not hashed again (the known digest is
    recorded even when it is not the file's: here a stand-in, to show it was not computed),
    and a file written since it was selected fails the pack instead of being trusted."""
    f = tmp_path / "a"
    f.write_bytes(b"alpha")
    change = Change("a", ChangeKind.FILE, size=5, content=FileSource(f, os.lstat(f)))
    stand_in = Digest("sha256:" + "ab" * 32)
    digests: dict[str, Digest] = {}
    out = io.BytesIO()
    write_tar([change], out, digests=digests, known={"a": stand_in})
    assert digests == {"a": stand_in} and b"alpha" in out.getvalue()
    before = os.lstat(f)
    time.sleep(0.02)  # past a timestamp tick
    f.write_bytes(b"ALPHA")  # same size
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))  # and mtime put back
    stale = Change("a", ChangeKind.FILE, size=5, content=FileSource(f, before))
    with pytest.raises(ContextError, match="was modified"):
        write_tar([stale], io.BytesIO(), digests={}, known={"a": stand_in})
    # without a known digest, the same file is simply hashed as read
    digests = {}
    write_tar([stale], io.BytesIO(), digests=digests)
    assert digests["a"] == Digest("sha256:" + hashlib.sha256(b"ALPHA").hexdigest())
