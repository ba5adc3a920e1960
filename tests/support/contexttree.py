"""A directory as a COPY of it sees it: its Changes with files read through FileSource, and
the content digests its key would know (for tests of packing and splicing)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from layerbuild.context.filesource import FileSource
from layerbuild.digest import Digest
from layerbuild.image.changes import Change, ChangeKind


def tree_changes(root: Path) -> list[Change]:
    """The Changes of a COPY of `root`, files read through FileSource as a context's are."""
    changes: list[Change] = []
    first_name: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            mode, mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
            if stat.S_ISDIR(st.st_mode):
                changes.append(Change(rel, ChangeKind.DIR, mode, mtime=mtime))
            elif stat.S_ISLNK(st.st_mode):
                link = os.readlink(path)
                changes.append(Change(rel, ChangeKind.SYMLINK, mode, mtime=mtime, link=link))
            elif (st.st_dev, st.st_ino) in first_name:
                link = first_name[(st.st_dev, st.st_ino)]
                changes.append(Change(rel, ChangeKind.HARDLINK, mode, mtime=mtime, link=link))
            else:
                first_name[(st.st_dev, st.st_ino)] = rel
                source = FileSource(str(path), st)
                size = st.st_size
                changes.append(
                    Change(rel, ChangeKind.FILE, mode, size=size, mtime=mtime, content=source)
                )
    return changes


def file_digests(changes: list[Change]) -> dict[str, Digest]:
    """What the COPY's key knows of each file: the sha256 of its content."""
    out = {}
    for c in changes:
        if c.kind is ChangeKind.FILE and isinstance(c.content, FileSource):
            data = Path(c.content.path).read_bytes()
            out[c.path] = Digest("sha256:" + hashlib.sha256(data).hexdigest())
    return out
