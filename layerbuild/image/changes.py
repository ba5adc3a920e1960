"""Change: the single currency between whatever produces a layer and the tar writer.

COPY/ADD, the overlay differ and the tar reader all produce `Change` values; the tar writer turns
an iterable of them into a deterministic layer tar. A Change describes one entry of a layer diff:

- ``FILE``/``DIR``/``SYMLINK``/``HARDLINK``/``CHARDEV``/``BLOCKDEV``/``FIFO``: the entry exists
  after this layer with this metadata (added or modified; OCI layers do not distinguish).
- ``WHITEOUT``: ``path`` was deleted; written as ``<dir>/.wh.<name>``.
- ``OPAQUE``: the directory ``path`` hides everything below it from lower layers; written as
  ``<path>/.wh..wh..opq``.

Paths are layer paths: relative, POSIX, no leading ``/`` or ``./``, no trailing ``/``, no ``..``
component (``normalize_path`` makes one from user input).
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


class ChangeKind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHARDEV = "chardev"
    BLOCKDEV = "blockdev"
    FIFO = "fifo"
    WHITEOUT = "whiteout"
    OPAQUE = "opaque"


Opener = Callable[[], BinaryIO]


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a layer diff.

    ``mode`` holds only permission bits (0o7777: rwx, setuid, setgid, sticky); the file type is
    ``kind``. ``mtime`` is whole seconds since the epoch. ``link`` is the target of a SYMLINK
    (verbatim) or the layer path of the first occurrence for a HARDLINK. ``content`` opens the
    data of a FILE (``size`` bytes); None means empty.
    """

    path: str
    kind: ChangeKind
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    link: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()
    content: Opener | None = None

    @property
    def is_dir(self) -> bool:
        return self.kind is ChangeKind.DIR

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def parent(self) -> str:
        return posixpath.dirname(self.path)


def normalize_path(path: str) -> str:
    """A layer path from an absolute or relative in-image path; '' is the root.

    ``..`` cannot climb above the root (as in a chroot), so '/../etc' is 'etc'.
    """
    cleaned = posixpath.normpath("/" + path.replace("\\", "/") if path else "/")
    # normpath keeps a leading '//' (POSIX allows it to be special); images do not.
    return cleaned.lstrip("/")


def sort_key(path: str) -> tuple[str, ...]:
    """Order that puts parents before children and siblings in byte order of their names.

    Sorting whole paths as strings would put 'a/b' after 'a.b'; comparing component tuples gives
    the depth-first walk order that containerd's change writer produces.
    """
    return tuple(path.split("/")) if path else ()


def sorted_changes(changes: Iterable[Change]) -> list[Change]:
    """Changes in layer order: parents before children, an OPAQUE marker right after its dir.

    A later Change for the same path (and kind class) replaces an earlier one.
    """
    by_path: dict[tuple[str, bool], Change] = {}
    for ch in changes:
        by_path[(ch.path, ch.kind is ChangeKind.OPAQUE)] = ch

    def key(item: tuple[tuple[str, bool], Change]) -> tuple[tuple[str, ...], int]:
        (path, opaque), _ = item
        # the marker sorts as the first child of its directory
        return (sort_key(path) + ("",), 0) if opaque else (sort_key(path), 0)

    return [ch for _, ch in sorted(by_path.items(), key=key)]
