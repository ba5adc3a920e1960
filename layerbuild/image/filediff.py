"""File-level differences between two sets of entries: one layer against another, or one root
filesystem against another.

An entry's state is what `diff` compares: its type, content digest, mode, owner, link target,
device numbers and xattrs, and its mtime. A path in one set only is added or removed; a path in
both whose state differs is changed, and says which aspects did (content, mode, owner, type,
link, xattrs, device); one that differs only in its mtime is `mtime-only`, the noise that makes
builds differ when nothing else does, listed after the real changes. Within each of those two
groups, the biggest first.

Two views, because they answer different questions: a layer's own entries (whiteouts and
opaque markers included, as entries of their own) say what one step wrote; the root
filesystems, with every layer applied (image/tree.py: whiteouts delete, hard links become the
file they name), say what a container would see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from layerbuild.digest import Digest
from layerbuild.image.changes import OPAQUE_MARKER, Change, ChangeKind
from layerbuild.image.layerfiles import LayerFiles
from layerbuild.image.tree import FileTree

ADDED, REMOVED, CHANGED, MTIME_ONLY = "added", "removed", "changed", "mtime-only"


@dataclass(frozen=True, slots=True)
class FileState:
    """What `diff` compares of one entry; `digest` only for a regular file."""

    kind: str
    mode: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    link: str = ""
    device: tuple[int, int] = (0, 0)
    xattrs: tuple[tuple[str, bytes], ...] = ()
    digest: Digest | None = None


@dataclass(frozen=True, slots=True)
class FileChange:
    """One path that differs; `what` names the aspects of a CHANGED one that differ."""

    path: str
    status: str
    what: tuple[str, ...]
    a: FileState | None
    b: FileState | None

    @property
    def size(self) -> int:
        """The bigger of the two sizes: what the change is worth looking at."""
        return max(s.size for s in (self.a, self.b) if s is not None)


def state(change: Change, digest: Digest | None) -> FileState:
    return FileState(
        kind=change.kind.value,
        mode=change.mode,
        uid=change.uid,
        gid=change.gid,
        size=change.size,
        mtime=change.mtime,
        link=change.link,
        device=(change.devmajor, change.devminor),
        xattrs=change.xattrs,
        digest=digest,
    )


def layer_states(files: LayerFiles) -> dict[str, FileState]:
    """A layer's own entries by in-image path ('/etc/passwd'); an opaque marker under the
    directory's path + '/' + its tar name, so it does not hide the directory's own entry."""
    out: dict[str, FileState] = {}
    for change in files.entries:
        path = "/" + change.path
        if change.kind is ChangeKind.OPAQUE:
            path = path.rstrip("/") + "/" + OPAQUE_MARKER
        out[path] = state(change, files.digests.get(change.path))
    return out


def rootfs_states(layers: Sequence[tuple[Digest, LayerFiles]]) -> dict[str, FileState]:
    """The root filesystem of the layers (bottom first, each with its diff_id) by in-image
    path, whiteouts applied; a file's digest comes from the layer that holds its data."""
    tree = FileTree()
    by_layer: dict[Digest, LayerFiles] = {}
    for diff_id, files in layers:
        by_layer[diff_id] = files
        tree.apply(files.entries, diff_id)
    out: dict[str, FileState] = {}
    for change in tree.walk():
        digest = None
        if change.kind is ChangeKind.FILE:
            ref = tree.content_ref(change.path)
            if ref is not None and ref[0] is not None:
                digest = by_layer[ref[0]].digests.get(ref[1])
        out["/" + change.path] = state(change, digest)
    return out


def compare(a: Mapping[str, FileState], b: Mapping[str, FileState]) -> list[FileChange]:
    """Every path that differs between `a` and `b`: real changes biggest first, then the
    mtime-only ones biggest first (paths in order among equals)."""
    out: list[FileChange] = []
    for path in a.keys() | b.keys():
        old, new = a.get(path), b.get(path)
        if old == new:
            continue
        if old is None:
            out.append(FileChange(path, ADDED, (), None, new))
        elif new is None:
            out.append(FileChange(path, REMOVED, (), old, None))
        else:
            what = aspects(old, new)
            status = MTIME_ONLY if what == ("mtime",) else CHANGED
            out.append(FileChange(path, status, what, old, new))
    out.sort(key=lambda c: (c.status == MTIME_ONLY, -c.size, c.path))
    return out


def aspects(a: FileState, b: FileState) -> tuple[str, ...]:
    """Which aspects of two states of one path differ, in a fixed order."""
    checks: Iterable[tuple[str, bool]] = (
        ("type", a.kind != b.kind),
        ("content", a.kind == b.kind and (a.digest != b.digest or a.size != b.size)),
        ("mode", a.mode != b.mode),
        ("owner", (a.uid, a.gid) != (b.uid, b.gid)),
        ("link", a.kind == b.kind and a.link != b.link),
        ("device", a.device != b.device),
        ("xattrs", a.xattrs != b.xattrs),
        ("mtime", a.mtime != b.mtime),
    )
    return tuple(name for name, differs in checks if differs)
