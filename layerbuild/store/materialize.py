"""materialize: a COPY layer's snapshot written from its Changes, instead of unpacking its tar.

After a COPY of a big context misses because one file changed, the RUN that follows needs the
new layer as an overlay lower. Unpacking the fresh 200 MB blob writes every file again; but the
previous build of the same step left a snapshot holding nearly the same files. Here each entry
whose packed content, mode, owner and mtime equal that snapshot's is hard-linked from it, and
only the rest is copied from the context. Snapshots are immutable overlay lowers (overlayfs
copies up before any write), so sharing inodes between them is safe.

The result must equal what unpacking the layer would give, or the snapshot of that diff_id
would lie to every later build: content is checked against `expected`, the digests the tar
writer took while packing or, when the tree is written while the layer is still being packed
(speedups/copykeys.py), the digests its cache key read, which the caller then compares with the
packed ones. Anything this module does not handle (devices, FIFOs, whiteouts, a path under a
symlink of the same layer) returns False, and the caller unpacks the blob as before, as it does
when an owner cannot be set (root of a user namespace that does not map it): the unpacker then
says why. Needs uid 0, real or in the build's user namespace, to give entries their owners.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from layerbuild.context.filesource import FileSource
from layerbuild.digest import Digest
from layerbuild.errors import ContextError
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.store.owners import Owners

_CHUNK = 1 << 20
_CAPABILITY = "security.capability"


@dataclass(frozen=True)
class Previous:
    """The snapshot of the same step's layer in an earlier build, and that step's per-path
    summaries (context/hashing.py: ``"sha256:… 0644 0:0"`` and the like). `root` is its full
    snapshot; when that layer's snapshot is a delta (store/deltaplan.py), `deltas` are the
    directories stacked above `root`, top-most first. `hex`: that layer's diff_id hex."""

    root: Path
    files: Mapping[str, str]
    hex: str = ""
    deltas: tuple[Path, ...] = ()
    mtimes: Path | None = None  # its entries' mtimes record (store/layermtimes.py), if any
    # the paths each delta holds, listed when first needed
    _held: list[frozenset[str]] = field(default_factory=list, compare=False, repr=False)

    @property
    def dirs(self) -> tuple[Path, ...]:
        """The snapshot's directories, top-most first."""
        return (*self.deltas, self.root)

    def locate(self, path: str) -> str:
        """The file system path of the previous layer's entry `path` (which its summaries
        list): in the top-most delta that holds it, else in the full snapshot."""
        if self.deltas:
            if not self._held:
                self._held.extend(_held_paths(d) for d in self.deltas)
            for top, held in zip(self.deltas, self._held, strict=True):
                if path in held:
                    return f"{top}/{path}"
        return f"{self.root}/{path}"


def _held_paths(root: Path) -> frozenset[str]:
    """Every path under `root` (a delta: small), relative to it."""
    out: set[str] = set()
    base = len(str(root)) + 1
    for dirpath, dirnames, filenames in os.walk(root):
        out.update(os.path.join(dirpath, n)[base:] for n in (*dirnames, *filenames))
    return frozenset(out)


def mtime_ns(change: Change, epoch: int | None) -> int:
    """The mtime `change` gets in a layer: clamped to SOURCE_DATE_EPOCH as the tar writer
    clamps it."""
    mtime = change.mtime
    if epoch is not None and mtime > epoch:
        mtime = epoch
    return mtime * 1_000_000_000


def materialize(
    changes: Sequence[Change],
    dest: Path,
    *,
    files: Mapping[str, str],
    expected: Mapping[str, Digest] | None,
    epoch: int | None,
    previous: Previous | None,
    written: dict[str, Digest] | None = None,
    cancel: threading.Event | None = None,
) -> bool:
    """Fill the empty directory `dest` with the tree of a layer made of `changes` (layer
    order); `files` are this step's summaries, `expected` the digests of the file contents the
    layer holds. False when the layer has entries of another kind or content that does not
    match: `dest` is then partly written, and the caller discards it.

    With `expected` None (the layer's digests are not known yet: it is being packed for the
    first time), every file is copied and its digest put in `written`, for the caller to
    compare with the packed ones; nothing is linked. `cancel` stops the work (False)."""
    writer = _Writer(dest, files, expected, epoch, previous, written)
    try:
        for change in changes:
            if (cancel is not None and cancel.is_set()) or not writer.add(change):
                return False
        writer.finish()
    except (OSError, ContextError):
        return False  # a context file that changed or vanished, a full disk: unpack instead
    return True


class _Writer:
    def __init__(
        self,
        dest: Path,
        files: Mapping[str, str],
        expected: Mapping[str, Digest] | None,
        epoch: int | None,
        previous: Previous | None,
        written: dict[str, Digest] | None,
    ) -> None:
        self.dest = str(dest)
        self.files = files
        self.expected = expected
        self.written = written
        self.regular: set[str] = set()  # files written or linked so far
        self.old_dirs: set[str] = {""}  # parents known to be directories in `previous`
        self.epoch = epoch
        self.previous = previous
        self.dirs: list[Change] = []
        self.made: set[str] = {""}  # directories this layer holds (or the root)
        self.owners = Owners(_raise)

    def add(self, change: Change) -> bool:
        path = change.path
        parent, _, _ = path.rpartition("/")
        parts = path.split("/")
        if not path or "" in parts or "." in parts or ".." in parts or path.startswith("/"):
            return False
        if parent not in self.made:
            return False  # a parent that is not a directory of this layer (a symlink, say)
        full = f"{self.dest}/{path}"
        kind = change.kind
        if kind is ChangeKind.DIR:
            os.mkdir(full, change.mode & 0o777)  # root writes into it whatever the mode
            self.made.add(path)
            self.dirs.append(change)
            return True
        if kind is ChangeKind.FILE:
            return self._file(change, full)
        if kind is ChangeKind.SYMLINK:
            os.symlink(change.link, full)
            st = os.lstat(full)
            if (st.st_uid, st.st_gid) != (change.uid, change.gid):
                os.lchown(full, change.uid, change.gid)
            mtime = self._mtime_ns(change)
            os.utime(full, ns=(mtime, mtime), follow_symlinks=False)
            return True
        if kind is ChangeKind.HARDLINK:
            target = change.link
            if target not in self.regular:
                return False
            os.link(f"{self.dest}/{target}", full, follow_symlinks=False)
            return True
        return False  # devices, FIFOs, whiteouts: left to the unpacker

    def finish(self) -> None:
        """Directory owners, modes and mtimes, deepest first (children bump mtimes)."""
        for change in reversed(self.dirs):
            full = f"{self.dest}/{change.path}"
            fd = os.open(full, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                self.owners.settle(change.path, change.uid, change.gid, change.mode & 0o7777, fd)
                mtime = self._mtime_ns(change)
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)

    def _mtime_ns(self, change: Change) -> int:
        return mtime_ns(change, self.epoch)

    def _file(self, change: Change, full: str) -> bool:
        digest = None
        if self.expected is not None:
            digest = self.expected.get(change.path)
            if digest is None:
                return False
            if self._link_previous(change, full, digest):
                self.regular.add(change.path)
                return True
        content = change.content
        if not isinstance(content, FileSource):
            return False
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(full, flags, change.mode & 0o777)  # mostly final already: see settle
        try:
            h = hashlib.sha256()
            for chunk in content.chunks(_CHUNK):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            got = Digest.from_hash(h)
            if digest is not None and got != digest:
                return False  # the context changed since the layer was packed
            if self.written is not None:
                self.written[change.path] = got
            self.owners.settle(change.path, change.uid, change.gid, change.mode & 0o7777, fd)
            for name, value in change.xattrs:
                os.setxattr(fd, name, value)
            mtime = self._mtime_ns(change)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)
        self.regular.add(change.path)
        return True

    def _old_dir(self, path: str, prev: Previous) -> bool:
        """Whether `path` and each of its parents were directories in the previous layer
        (remembered, so 20k files in 1.6k directories check each directory once)."""
        if path in self.old_dirs:
            return True
        if not prev.files.get(path, "").startswith("dir "):
            return False
        if not self._old_dir(path.rpartition("/")[0], prev):
            return False
        self.old_dirs.add(path)
        return True

    def _link_previous(self, change: Change, full: str, digest: Digest) -> bool:
        """Hard-link the previous snapshot's copy when it is this very entry: same summary
        (content digest, mode, owner, xattrs) in a parent chain of real directories, and the
        same mtime."""
        prev = self.previous
        if prev is None:
            return False
        summary = self.files.get(change.path)
        if summary is None or prev.files.get(change.path) != summary:
            return False
        if not summary.startswith(str(digest) + " "):
            return False  # what was packed is not what the key read: copy and check instead
        if not self._old_dir(change.path.rpartition("/")[0], prev):
            return False  # old/parent could be a symlink: never link through one
        old = prev.locate(change.path)
        try:
            st = os.lstat(old)
        except OSError:
            return False
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_size != change.size
            or st.st_mtime_ns != self._mtime_ns(change)
        ):
            return False
        try:
            os.link(old, full, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.EMLINK, errno.EXDEV, errno.EPERM):
                return False  # too many links, another filesystem: copy instead
            raise
        return True


def _raise(message: str) -> None:
    """Owners' note when an owner cannot be kept: here it means "unpack instead", which says
    what happened in its own words."""
    raise OSError(message)
