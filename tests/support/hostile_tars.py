"""Layer tars that try to escape their root, for the tests of store/unpack.py.

Each builder returns the bytes of an uncompressed tar. The attacks follow the history of the
anchors: tar-slip, symlinked parents (docker cp CVE-2018-15664), a symlinked root `/.` (umoci
CVE-2021-29136), hard links out of the root, and whiteouts that name `..` or climb out.
`victim` is a directory outside the unpack root that the tests watch: every attack aims at it.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str = "file"  # file, dir, symlink, hardlink, fifo, chardev
    data: bytes = b""
    link: str = ""
    mode: int = 0o644
    mtime: int = 1_700_000_000
    xattrs: tuple[tuple[str, str], ...] = ()


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chardev": tarfile.CHRTYPE,
}


def make_tar(entries: list[Entry]) -> bytes:
    """A PAX tar of `entries`, in order, names written verbatim (no cleaning)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _TYPES[e.kind]
            info.mode = e.mode
            info.mtime = e.mtime
            info.linkname = e.link
            if e.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.xattrs}
            if e.kind == "file":
                info.size = len(e.data)
                tf.addfile(info, io.BytesIO(e.data))
            else:
                tf.addfile(info)
    return out.getvalue()


def hostile_tars(victim: str) -> dict[str, bytes]:
    """Name -> tar bytes. `victim` is an absolute directory outside the unpack root; it holds
    a file `passwd` that the attacks try to overwrite, link or delete."""
    rel_up = "../" * 12 + victim.lstrip("/")  # enough ".." to reach / from any tmp dir
    cases: dict[str, Callable[[], list[Entry]]] = {
        "tar-slip": lambda: [Entry(f"{rel_up}/x", data=b"pwned")],
        "tar-slip-inner": lambda: [Entry("a/b/../../../x", data=b"pwned")],
        "symlink-parent-absolute": lambda: [
            Entry("a", "symlink", link=victim),
            Entry("a/passwd", data=b"pwned"),
        ],
        "symlink-parent-dotdot": lambda: [
            Entry("a", "symlink", link=".."),
            Entry("a/a/x", data=b"pwned"),
        ],
        "symlink-parent-relative-deep": lambda: [
            Entry("d", "dir", mode=0o755),
            Entry("d/up", "symlink", link=rel_up),
            Entry("d/up/passwd", data=b"pwned"),
        ],
        "hardlink-escape": lambda: [Entry("h", "hardlink", link=f"{rel_up}/passwd")],
        "hardlink-absolute": lambda: [Entry("h", "hardlink", link=f"{victim}/passwd")],
        "hardlink-through-symlink": lambda: [
            Entry("s", "symlink", link=victim),
            Entry("h", "hardlink", link="s/passwd"),
        ],
        "dot-symlink": lambda: [Entry(".", "symlink", link=victim), Entry("passwd", data=b"x")],
        "dot-slash-symlink": lambda: [Entry("./", "symlink", link=victim)],
        "dotdot-normalised-symlink": lambda: [Entry("a/..", "symlink", link=victim)],
        "whiteout-dotdot": lambda: [Entry("sub", "dir", mode=0o755), Entry("sub/.wh...")],
        "whiteout-dot": lambda: [Entry("sub", "dir", mode=0o755), Entry("sub/.wh..")],
        "whiteout-escaping": lambda: [Entry(f"{rel_up}/.wh.passwd")],
        "whiteout-through-symlink": lambda: [
            Entry("a", "symlink", link=victim),
            Entry("a/.wh.passwd"),
        ],
        "opaque-through-symlink": lambda: [
            Entry("a", "symlink", link=victim),
            Entry("a/.wh..wh..opq"),
        ],
    }
    return {name: make_tar(build()) for name, build in cases.items()}


def compress(tar: bytes, compression: str) -> bytes:
    """`tar` as a layer blob: 'none', 'gzip' or 'zstd'."""
    if compression == "gzip":
        import gzip

        return gzip.compress(tar, mtime=0)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(tar)
    return tar
