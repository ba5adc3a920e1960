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
from dataclasses import dataclass, replace
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
    (verbatim) or, for a HARDLINK, the layer path of another name of the same file
    (``sorted_changes`` makes it the first name in layer order, the one with the data).
    ``content`` opens the data of a FILE (``size`` bytes); None means empty.
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
    """Changes in layer order: parents before children, an OPAQUE marker right after its dir,
    and the first entry of each hard-linked file the one that carries its data.

    A later Change for the same path (and kind class) replaces an earlier one.
    """
    if isinstance(changes, list) and _in_order(changes):
        # a COPY's Changes come sorted and are sorted again when packed: a sort of 100,000
        # of them held a key tuple and a dict entry each, a sixth of the build's peak memory
        return data_first(list(changes))
    by_path: dict[tuple[str, bool], Change] = {}
    for ch in changes:
        by_path[(ch.path, ch.kind is ChangeKind.OPAQUE)] = ch

    def key(item: tuple[tuple[str, bool], Change]) -> tuple[tuple[str, ...], int]:
        (path, opaque), _ = item
        # the marker sorts as the first child of its directory
        return (sort_key(path) + ("",), 0) if opaque else (sort_key(path), 0)

    return data_first([ch for _, ch in sorted(by_path.items(), key=key)])


def _in_order(changes: list[Change]) -> bool:
    """Whether `changes` are in layer order already, each (path, kind class) once: then the
    sort in `sorted_changes` keeps them as they are. One key alive at a time."""
    previous: tuple[str, ...] | None = None
    for ch in changes:
        key = sort_key(ch.path) + ("",) if ch.kind is ChangeKind.OPAQUE else sort_key(ch.path)
        if previous is not None and key <= previous:
            return False
        previous = key
    return True


def data_first(ordered: list[Change]) -> list[Change]:
    """`ordered` with every hard-linked file's data moved to the first of its names.

    Extractors (umoci, containerd, tar, store/unpack.py) make a link entry with link(2), so its
    target must have been written already. Producers pick the data entry in their own order: a
    GNU tar archive holds Debian's /usr/bin/uncompress with the data and /usr/bin/gunzip as a
    link to it, which layer order puts first. So for each FILE that HARDLINKs in `ordered` lead
    to (through other HARDLINKs too), the first of those names becomes the FILE (the inode's
    metadata and content) and the others HARDLINKs to it. Links whose target is not a FILE of
    `ordered` (a lower layer's file, a symlink) are left as they are. Depends on the order
    only, so layers stay deterministic; an order that already has the data first is unchanged.
    """
    hardlinks = [i for i, ch in enumerate(ordered) if ch.kind is ChangeKind.HARDLINK]
    if not hardlinks:
        return ordered  # most layers: no second pass over 100k entries
    where = {
        ch.path: i
        for i, ch in enumerate(ordered)
        if ch.kind is ChangeKind.FILE or ch.kind is ChangeKind.HARDLINK
    }
    groups: dict[int, list[int]] = {}  # index of the FILE -> indexes of the links to it
    for i in hardlinks:
        data = _data_index(ordered, where, ordered[i].link)
        if data is not None:
            groups.setdefault(data, []).append(i)
    out = ordered
    for data, links in groups.items():
        first = min(data, links[0])  # links are in order
        name = ordered[first].path
        if first == data and all(ordered[i].link == name for i in links):
            continue
        if out is ordered:
            out = list(ordered)
        out[first] = replace(ordered[data], path=name)
        for i in (data, *links):
            if i != first:
                out[i] = replace(
                    ordered[i], kind=ChangeKind.HARDLINK, link=name, size=0, content=None
                )
    return out


def _data_index(ordered: list[Change], where: dict[str, int], link: str) -> int | None:
    """The index of the FILE a hard link to `link` leads to, or None (not in `ordered`, not a
    regular file, or a loop of links)."""
    seen: set[str] = set()
    while link not in seen:
        seen.add(link)
        i = where.get(link)
        if i is None:
            return None
        ch = ordered[i]
        if ch.kind is ChangeKind.FILE:
            return i
        link = ch.link
    return None
