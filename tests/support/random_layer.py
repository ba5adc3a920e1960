"""random_layer(): reproducible Change lists that exercise every corner of a layer tar.

Name: random_layer(seed, ...) -> list[Change]
Scope: any test that needs a realistic layer diff (tar writer/reader round trips, FileTree,
       store unpack, exporters, validate), in the spirit of go-containerregistry's random.Image.
Depends: only layerbuild.image.changes; content comes from in-memory openers.

The same seed gives the same changes. A layer holds directories (with parents always present),
small files of random data, a few big mostly-zero files, symlinks (relative, absolute,
dangling), hard links whose first occurrence sorts before them, FIFOs, character and block
devices, files with xattrs, whiteouts, opaque directories, and odd names: spaces, unicode,
names longer than 100 bytes and paths longer than 256 bytes.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import BinaryIO

from layerbuild.image.changes import Change, ChangeKind, sort_key

ODD_NAMES = (
    "with space",
    "tab\tname",
    "ünïcödé",
    "日本語.txt",
    "emoji-🐳",
    "#hash",
    "-dash",
    "quote'\"",
    "x" * 120,
    ".hidden",
    "a.b",
    "trailing.",
)
BASE_MTIME = 1_700_000_000


def opener_for(data: bytes) -> Callable[[], BinaryIO]:
    """An opener returning a fresh reader of ``data`` each time."""
    return lambda: io.BytesIO(data)


def sparse_bytes(rng: random.Random, size: int) -> bytes:
    """``size`` bytes of zeros with a few random islands (a 'sparse-ish' big file)."""
    buf = bytearray(size)
    for _ in range(4):
        start = rng.randrange(0, max(1, size - 4096))
        buf[start : start + 4096] = rng.randbytes(min(4096, size - start))
    return bytes(buf)


class _Builder:
    def __init__(self, seed: int, mtime_spread: int) -> None:
        self.rng = random.Random(seed)
        self.mtime_spread = mtime_spread
        self.changes: dict[str, Change] = {}
        self.dirs: list[str] = []
        self.files: list[str] = []

    def mtime(self) -> int:
        return BASE_MTIME + self.rng.randrange(self.mtime_spread)

    def add(self, change: Change) -> None:
        self.changes.setdefault(change.path, change)

    def name(self) -> str:
        if self.rng.random() < 0.15:
            return self.rng.choice(ODD_NAMES)
        return f"n{self.rng.randrange(1_000_000):06d}"

    def ensure_dir(self, path: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.changes:
                mode = self.rng.choice((0o755, 0o700, 0o1777, 0o2755))
                self.add(Change(d, ChangeKind.DIR, mode=mode, mtime=self.mtime()))
                self.dirs.append(d)

    def new_path(self) -> str:
        parent = self.rng.choice(self.dirs) if self.dirs else ""
        while True:
            path = f"{parent}/{self.name()}" if parent else self.name()
            if path not in self.changes:
                return path

    def file(self, data: bytes, path: str | None = None, **extra: object) -> str:
        path = path or self.new_path()
        mode = self.rng.choice((0o644, 0o600, 0o755, 0o4755))
        self.add(
            Change(
                path,
                ChangeKind.FILE,
                mode=mode,
                uid=self.rng.choice((0, 1000, 65534)),
                gid=self.rng.choice((0, 100)),
                size=len(data),
                mtime=self.mtime(),
                content=opener_for(data),
                **extra,
            )  # type: ignore[arg-type]
        )
        self.files.append(path)
        return path


def _tree(b: _Builder, dirs: int) -> None:
    for _ in range(dirs):
        b.ensure_dir(b.new_path())
    deep = "/".join(f"level-{i:02d}-" + "d" * 20 for i in range(12))  # a path > 256 bytes
    b.ensure_dir(deep)


def _links_and_specials(b: _Builder) -> None:
    for _ in range(3):
        b.add(
            Change(
                b.new_path(),
                ChangeKind.SYMLINK,
                mode=0o777,
                mtime=b.mtime(),
                link=b.rng.choice(("../" + b.name(), "/usr/bin/env", "missing/target")),
            )
        )
    target = sorted(b.files, key=sort_key)[0]
    for _ in range(2):
        link = b.new_path()
        if sort_key(link) > sort_key(target):  # the data must come first in the tar
            b.add(Change(link, ChangeKind.HARDLINK, mode=0o644, mtime=b.mtime(), link=target))
    b.add(Change(b.new_path(), ChangeKind.FIFO, mode=0o600, mtime=b.mtime()))
    b.add(Change(b.new_path(), ChangeKind.CHARDEV, mode=0o666, devmajor=1, devminor=3))
    b.add(Change(b.new_path(), ChangeKind.BLOCKDEV, mode=0o660, devmajor=8, devminor=1))
    caps = b"\x01\x00\x00\x02\x00\x20\x00\x00" + bytes(12)
    b.file(b"#!/bin/sh\n", xattrs=(("security.capability", caps), ("user.note", "ü".encode())))


def _deletions(b: _Builder) -> None:
    for _ in range(3):
        b.add(Change(b.new_path(), ChangeKind.WHITEOUT, mode=0))
    opaque_dir = b.rng.choice(b.dirs)
    b.changes[opaque_dir + "\0opaque"] = Change(opaque_dir, ChangeKind.OPAQUE, mode=0)


def random_layer(
    seed: int = 0,
    *,
    files: int = 40,
    dirs: int = 8,
    big_files: int = 1,
    big_size: int = 3 << 20,
    mtime_spread: int = 1_000_000,
) -> list[Change]:
    """A reproducible layer diff; the list is in no particular order (writers must sort)."""
    b = _Builder(seed, mtime_spread)
    _tree(b, dirs)
    for _ in range(files):
        b.file(b.rng.randbytes(b.rng.choice((0, 1, 511, 512, 513, 4096, 20_000))))
    for _ in range(big_files):
        b.file(sparse_bytes(b.rng, big_size))
    _links_and_specials(b)
    _deletions(b)
    out = list(b.changes.values())
    b.rng.shuffle(out)
    return out


def content_of(change: Change) -> bytes:
    """The data of a FILE change (b'' for an empty one)."""
    if change.content is None:
        return b""
    with change.content() as f:
        return f.read()
