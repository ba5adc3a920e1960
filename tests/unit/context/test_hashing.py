"""changes_digest: what lands in the layer changes the digest; mtime never does."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from layerbuild.context.filesource import FileSource
from layerbuild.context.hashing import changes_digest
from layerbuild.context.statcache import StatCache
from layerbuild.digest import Digest
from layerbuild.engine.copysemantics import copy_changes
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tree import FileTree

MARGIN_NS = 50_000_000


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "src" / "sub").mkdir(parents=True)
    (root / "src" / "app.py").write_bytes(b"print('hi')\n")
    (root / "src" / "sub" / "data.bin").write_bytes(os.urandom(2048))
    (root / "src" / "link").symlink_to("app.py")
    os.link(root / "src" / "app.py", root / "src" / "hard")
    return root


@pytest.fixture
def cache(tmp_path: Path) -> StatCache:
    return StatCache(tmp_path / "stat.db", racy_margin_ns=MARGIN_NS)


def _copy(root: Path, **kw: object) -> list[Change]:
    args: dict[str, object] = {
        "workdir": "/",
        "tree": FileTree(),
        "ignore": None,
        "excludes": (),
        "chown": None,
        "chmod": None,
        "mtime": None,
        "now": 7,
    }
    args.update(kw)
    return copy_changes(root, ["src"], "/app/", **args)  # type: ignore[arg-type]


def changed_paths(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Paths added, removed or different between two summaries, sorted."""
    return sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))


def _digest(root: Path, cache: StatCache | None = None, **kw: object) -> Digest:
    return changes_digest(_copy(root, **kw), cache)[0]


def test_copy_reads_context_files_through_filesource(ctx: Path) -> None:
    files = [c for c in _copy(ctx) if c.kind is ChangeKind.FILE]
    assert files and all(isinstance(c.content, FileSource) for c in files)


def test_same_inputs_same_digest_with_or_without_cache(ctx: Path, cache: StatCache) -> None:
    time.sleep(0.1)
    cold = _digest(ctx, cache)
    assert _digest(ctx, cache) == cold
    assert _digest(ctx, None) == cold
    # app.py and data.bin; the second name of the hard link carries no content
    assert (cache.stats().misses, cache.stats().hits) == (2, 2)


def test_mtime_only_change_keeps_the_digest(ctx: Path, cache: StatCache) -> None:
    before = _digest(ctx, cache)
    for path in (ctx / "src" / "app.py", ctx / "src" / "sub" / "data.bin", ctx / "src"):
        os.utime(path, ns=(1, 1_000_000_000))
    changes = _copy(ctx)
    assert any(c.mtime == 1 for c in changes)  # the layer does see it
    assert changes_digest(changes, cache)[0] == before


def test_content_change_changes_digest_and_is_named(ctx: Path, cache: StatCache) -> None:
    before, old = changes_digest(_copy(ctx), cache)
    (ctx / "src" / "sub" / "data.bin").write_bytes(os.urandom(2048))
    after, new = changes_digest(_copy(ctx), cache)
    assert after != before
    assert changed_paths(old, new) == ["app/sub/data.bin"]


def test_mode_uid_and_chmod_change_the_digest(ctx: Path, cache: StatCache) -> None:
    base, summary = changes_digest(_copy(ctx), cache)
    assert summary["app/app.py"].endswith(" 0644 0:0")
    assert _digest(ctx, cache, chown=(1000, 0)) != base
    assert _digest(ctx, cache, chown=(0, 1000)) != base
    assert _digest(ctx, cache, chmod=0o600) != base
    (ctx / "src" / "sub" / "data.bin").chmod(0o755)
    after, new = changes_digest(_copy(ctx), cache)
    assert after != base
    assert changed_paths(summary, new) == ["app/sub/data.bin"]


def test_symlink_target_change_changes_the_digest(ctx: Path, cache: StatCache) -> None:
    base, summary = changes_digest(_copy(ctx), cache)
    assert summary["app/link"] == "symlink:app.py 0777 0:0"
    (ctx / "src" / "link").unlink()
    (ctx / "src" / "link").symlink_to("sub/data.bin")
    after, new = changes_digest(_copy(ctx), cache)
    assert after != base
    assert changed_paths(summary, new) == ["app/link"]


def test_hard_link_structure_changes_the_digest(ctx: Path, cache: StatCache) -> None:
    base, summary = changes_digest(_copy(ctx), cache)
    assert summary["app/hard"] == "hardlink:app/app.py 0644 0:0"
    # same bytes, same modes, but two files instead of one file with two names
    (ctx / "src" / "hard").unlink()
    (ctx / "src" / "hard").write_bytes((ctx / "src" / "app.py").read_bytes())
    after, new = changes_digest(_copy(ctx), cache)
    assert after != base
    assert changed_paths(summary, new) == ["app/hard"]


def test_excluded_file_change_does_not_matter(ctx: Path, cache: StatCache) -> None:
    base, summary = changes_digest(_copy(ctx, excludes=["sub"]), cache)
    assert "app/sub/data.bin" not in summary
    (ctx / "src" / "sub" / "data.bin").write_bytes(b"other")
    assert _digest(ctx, cache, excludes=["sub"]) == base


def test_inline_and_unopened_contents_are_hashed() -> None:
    def heredoc(data: bytes) -> Change:
        return Change(
            "etc/conf", ChangeKind.FILE, size=len(data), content=lambda: io.BytesIO(data)
        )

    a, summary = changes_digest([heredoc(b"k=v\n")], None)
    b, _ = changes_digest([heredoc(b"k=w\n")], None)
    assert a != b
    assert summary == {"etc/conf": "sha256:" + hashlib.sha256(b"k=v\n").hexdigest() + " 0644 0:0"}
    empty = Change("e", ChangeKind.FILE)
    _, summary = changes_digest([empty], None)
    assert summary["e"].startswith("sha256:" + hashlib.sha256(b"").hexdigest())


def test_xattrs_devices_and_whiteouts_count() -> None:
    plain = Change("bin/ping", ChangeKind.FILE)
    capped = Change("bin/ping", ChangeKind.FILE, xattrs=(("security.capability", b"\x01"),))
    assert changes_digest([plain], None)[0] != changes_digest([capped], None)[0]
    assert " xattrs:" in changes_digest([capped], None)[1]["bin/ping"]
    null = Change("dev/null", ChangeKind.CHARDEV, mode=0o666, devmajor=1, devminor=3)
    zero = Change("dev/null", ChangeKind.CHARDEV, mode=0o666, devmajor=1, devminor=5)
    assert changes_digest([null], None)[0] != changes_digest([zero], None)[0]
    assert changes_digest([null], None)[1] == {"dev/null": "chardev:1,3 0666 0:0"}
    gone = Change("old", ChangeKind.WHITEOUT)
    assert changes_digest([gone], None)[1] == {"old": "whiteout"}
    assert changes_digest([gone], None)[0] != changes_digest([], None)[0]


def test_encoding_is_unambiguous() -> None:
    """Field boundaries cannot shift: 'ab' -> 'c' is not 'a' -> 'bc'."""
    one = [Change("ab", ChangeKind.SYMLINK, link="c")]
    two = [Change("a", ChangeKind.SYMLINK, link="bc")]
    assert changes_digest(one, None)[0] != changes_digest(two, None)[0]
    split = [Change("a", ChangeKind.DIR), Change("a/b", ChangeKind.DIR)]
    assert changes_digest(split, None)[0] != changes_digest(split[::-1], None)[0]


def _documented(changes: list[Change], contents: list[str]) -> str:
    """The module docstring's encoding, written out independently."""

    def s(text: str) -> bytes:
        data = text.encode("utf-8", "surrogateescape")
        return struct.pack("<I", len(data)) + data

    out = b"layerbuild.changes.v1\n"
    for c, content in zip(changes, contents, strict=True):
        out += s(c.path) + s(c.kind.value)
        out += struct.pack("<6Q", c.mode, c.uid, c.gid, c.size, c.devmajor, c.devminor)
        out += s(c.link) + struct.pack("<I", len(c.xattrs))
        for name, value in sorted(c.xattrs):
            out += s(name) + struct.pack("<I", len(value)) + value
        out += s(content)
    out += struct.pack("<Q", len(changes))
    return "sha256:" + hashlib.sha256(out).hexdigest()


def test_digest_follows_the_documented_encoding() -> None:
    data = b"hello\n"
    changes = [
        Change("app", ChangeKind.DIR, mode=0o755, uid=1, gid=2),
        Change(
            "app/\udcff-name",
            ChangeKind.FILE,
            size=len(data),
            xattrs=(("user.b", b"2"), ("user.a", b"1")),
            content=lambda: io.BytesIO(data),
        ),
        Change("app/l", ChangeKind.SYMLINK, mode=0o777, link="\udcff-name"),
    ]
    contents = ["", "sha256:" + hashlib.sha256(data).hexdigest(), ""]
    assert changes_digest(changes, None)[0] == _documented(changes, contents)
