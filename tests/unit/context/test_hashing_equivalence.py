"""changes_digest's written-out loop for plain files gives the bytes and summaries of the
generic per-Change encoding (`_encode`, `_describe`) on seeded random Changes and trees."""

from __future__ import annotations

import hashlib
import os
import random
import struct
from pathlib import Path

import pytest

from layerbuild.context.hashing import _VERSION, _describe, _encode, changes_digest
from layerbuild.context.ignore import IgnoreRules
from layerbuild.digest import Digest
from layerbuild.engine.copysemantics import copy_changes
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.tree import FileTree


def _generic(changes: list[Change], contents: list[str]) -> tuple[Digest, dict[str, str]]:
    """The digest and summary with every Change through `_encode` and `_describe`."""
    records = [_VERSION, *(_encode(c, d) for c, d in zip(changes, contents, strict=True))]
    records.append(struct.pack("<Q", len(changes)))
    summary = {c.path: _describe(c, d) for c, d in zip(changes, contents, strict=True)}
    return Digest.from_hash(hashlib.sha256(b"".join(records))), summary


def _random_change(rng: random.Random, i: int) -> tuple[Change, str]:
    kind = rng.choice([*ChangeKind, ChangeKind.FILE, ChangeKind.FILE, ChangeKind.FILE])
    xattrs: tuple[tuple[str, bytes], ...] = ()
    if rng.random() < 0.2:
        xattrs = (("security.capability", rng.randbytes(rng.randrange(0, 20))),)
    link = "" if kind is ChangeKind.FILE and rng.random() < 0.9 else f"t\udcff{i}"
    change = Change(
        f"d{rng.randrange(5)}/\udcfe-{i}-é",
        kind,
        mode=rng.randrange(0o10000),
        uid=rng.choice([0, 1000, 2**32 - 2]),
        gid=rng.randrange(70000),
        size=rng.choice([0, 5, 2**40]),
        mtime=rng.randrange(2**31),
        link=link,
        devmajor=rng.randrange(300) if rng.random() < 0.3 else 0,
        devminor=rng.randrange(300) if rng.random() < 0.3 else 0,
        xattrs=xattrs,
    )
    content = "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()
    return change, content if kind is ChangeKind.FILE else ""


@pytest.mark.parametrize("seed", range(8))
def test_random_changes_encode_as_the_generic_path(seed: int) -> None:
    rng = random.Random(seed)
    drawn = [_random_change(rng, i) for i in range(rng.randrange(1, 300))]
    changes = [c for c, _ in drawn]
    known = {c.path: Digest(d) for c, d in drawn if d}
    contents = [known.get(c.path, "") if c.kind is ChangeKind.FILE else "" for c in changes]
    # FILEs without content read as empty: those drawn all have one in `known`
    assert changes_digest(changes, None, known=known) == _generic(changes, contents)


def _tree(root: Path, rng: random.Random) -> None:
    """Directories, files of random modes and sizes, symlinks, hard links, a fifo and a
    .dockerignore with an exception."""
    dirs = [root]
    for i in range(rng.randrange(20, 60)):
        parent = rng.choice(dirs)
        what = rng.random()
        if what < 0.2:
            d = parent / f"dir{i}"
            d.mkdir()
            os.chmod(d, rng.choice([0o755, 0o700, 0o775]))
            dirs.append(d)
        elif what < 0.75:
            f = parent / f"f{i}.{rng.choice(['py', 'log', 'txt'])}"
            f.write_bytes(rng.randbytes(rng.randrange(0, 3000)))
            os.chmod(f, rng.choice([0o644, 0o600, 0o755, 0o4755]))
        elif what < 0.85:
            (parent / f"l{i}").symlink_to(rng.choice(["f1.py", "../x", "dir0", "\udcfe"]))
        else:
            files = [p for p in root.rglob("f*") if p.is_file() and not p.is_symlink()]
            if files:
                os.link(rng.choice(files), parent / f"h{i}")
    os.mkfifo(root / "fifo")
    (root / ".dockerignore").write_text("**/*.log\n!dir*/keep.log\n")
    (root / rng.choice(dirs).relative_to(root) / "keep.log").write_text("kept")


@pytest.mark.parametrize("seed", range(6))
def test_random_trees_digest_as_the_generic_path(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / "ctx"
    root.mkdir()
    _tree(root, rng)
    ignore = IgnoreRules.parse((root / ".dockerignore").read_text())
    changes = copy_changes(
        root,
        ["."],
        "/app/",
        workdir="/",
        tree=FileTree(),
        ignore=ignore,
        excludes=(),
        chown=rng.choice([None, (1000, 1000)]),
        chmod=rng.choice([None, "0640"]),
        mtime=None,
        now=7,
    )
    kinds = {c.kind for c in changes}
    assert {ChangeKind.FILE, ChangeKind.DIR, ChangeKind.SYMLINK, ChangeKind.FIFO} <= kinds
    assert not any(c.path.endswith(".log") and "keep" not in c.path for c in changes)
    digest, summary = changes_digest(changes, None)
    contents = []
    for c in changes:
        if c.kind is ChangeKind.FILE:
            assert c.content is not None
            with c.content() as f:
                contents.append("sha256:" + hashlib.sha256(f.read()).hexdigest())
        else:
            contents.append("")
    assert (digest, summary) == _generic(changes, contents)
