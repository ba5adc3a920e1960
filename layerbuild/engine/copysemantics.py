"""COPY/ADD semantics: sources in a root + a destination in the image -> layer Changes.

Follows BuildKit's file op (fsutil copy with CopyDirContents and FollowLinks, as the Dockerfile
frontend asks for):

- a relative dest is joined to WORKDIR; symlinks in the dest are resolved inside the image;
- a directory source copies its contents; the dest directory keeps its metadata if it exists,
  else it is created 0755 (owned by --chown, like every directory COPY creates);
- a file lands inside dest when dest ends in '/' or is an existing directory, else it is dest;
- several sources need a directory dest (Docker's classic rule, which BuildKit silently breaks);
- uid/gid 0:0 for the build context (BuildKit's local source resets them), the source's owner
  for COPY --from (``preserve_owner``), --chown overrides both; --chmod applies to everything
  copied except symlinks; mtimes are the source's, in whole seconds, unless ``mtime`` is given.

Every ancestor directory of a written path is part of the layer (containerd's change writer
includes parents), copied from the image with its metadata or newly created.
"""

from __future__ import annotations

import dataclasses
import io
import posixpath
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from layerbuild.context.filesource import FileSource
from layerbuild.context.ignore import IgnoreRules
from layerbuild.context.lstat import Stat
from layerbuild.context.select import SourceFile, select
from layerbuild.engine.chmod import Chmod, parse_chmod
from layerbuild.engine.copyentry import CopyMeta, capability, entry_change
from layerbuild.errors import BuildError
from layerbuild.image.changes import Change, ChangeKind, normalize_path, sort_key

_MULTI_SOURCE = (
    "When using COPY with more than one source file, the destination must be a directory "
    "and end with a /"
)


class DestTree(Protocol):
    """The image the layer goes on top of (image/tree.py FileTree implements it).

    Paths are layer paths (no leading slash). ``lookup`` follows symlinks inside the image;
    ``resolve`` returns the path with in-image symlinks resolved (missing components kept).
    """

    def lookup(self, path: str) -> Change | None: ...

    def resolve(self, path: str) -> str: ...


class _EmptyTree:
    """COPY --link: the layer is built against nothing, so no dest path is inspected."""

    def lookup(self, path: str) -> Change | None:
        return None

    def resolve(self, path: str) -> str:
        return path


def copy_changes(
    root: Path,
    sources: Sequence[str],
    dest: str,
    *,
    workdir: str,
    tree: DestTree,
    ignore: IgnoreRules | None,
    excludes: Sequence[str],
    chown: tuple[int, int] | None,
    chmod: int | str | None,
    mtime: int | None,
    link: bool = False,
    preserve_owner: bool = False,
    inline: Sequence[tuple[str, bytes]] = (),
    follow_final_symlink: bool = True,
    now: int | None = None,
    parents: bool = False,
    selected: Mapping[str, list[SourceFile]] | None = None,
) -> list[Change]:
    """The Changes of one COPY: ``sources`` resolved in ``root``, written at ``dest``.

    ``parents`` (COPY --parents) keeps each match's path below the root, or below a ``/./``
    pivot in its source (``./x/./y/*.txt`` → ``dest/y/...``), under ``dest``.

    ``inline`` holds heredoc sources (name, data): files of mode 0644 unless --chmod.
    ``follow_final_symlink``: a source that is itself a symlink is followed inside the root.
    ``now`` is the mtime of directories COPY creates when ``mtime`` is None (default: the
    current time, as BuildKit does; SOURCE_DATE_EPOCH clamping is the tar writer's job).
    ``selected`` holds sources already resolved with these arguments, by source as written.
    """
    meta = CopyMeta(
        chown=chown,
        chmod=parse_chmod(chmod) if isinstance(chmod, str) else _octal(chmod),
        mtime=mtime,
        preserve_owner=preserve_owner,
        created_mtime=mtime if mtime is not None else _now(now),
    )
    matches = [
        (_pivot(src), group, index)
        for index, src in enumerate(sources)
        for group in _group_by_match(
            (selected or {}).get(src)
            or select(
                root,
                src,
                ignore=ignore,
                excludes=excludes,
                follow_final_symlink=follow_final_symlink,
            )
        )
    ]
    draft = _Draft(_EmptyTree() if link else tree, meta)
    dest_path = draft.resolve_dest(dest, workdir)
    dest_is_dir = parents or _names_directory(dest) or draft.kind_at(dest_path) is ChangeKind.DIR
    if len(matches) + len(inline) > 1 and not dest_is_dir:
        raise BuildError(
            f"{_MULTI_SOURCE} (destination {dest!r})",
            hint=f"write the destination as {dest.rstrip('/') + '/'!r}",
        )
    for pivot, group, index in matches:
        # hard links are kept within what one source names, not across sources: BuildKit
        # copies each source with a copy action (and a hard-link tracker) of its own
        draft.source = index
        if parents:
            rel = _below(normalize_path(group[0].source), pivot)
            inside = rel if group[0].is_dir else posixpath.dirname(rel)
            draft.put_match(posixpath.join(dest_path, inside).rstrip("/"), True, group)
        else:
            draft.put_match(dest_path, dest_is_dir, group)
    for name, data in inline:
        draft.put_inline(dest_path, dest_is_dir, name, data)
    return draft.finish()


def _pivot(source: str) -> str:
    """The part of a COPY --parents source before its ``/./`` pivot ('' when it has none)."""
    if "/./" not in source:
        return ""
    return normalize_path(source.split("/./", 1)[0])


def _below(path: str, pivot: str) -> str:
    return path[len(pivot) + 1 :] if pivot and path.startswith(pivot + "/") else path


def _now(now: int | None) -> int:
    return now if now is not None else int(time.time())


def _octal(mode: int | None) -> Chmod | None:
    if mode is None:
        return None
    if not 0 <= mode <= 0o7777:
        raise BuildError(f"invalid --chmod value {mode:o}: must be at most 7777")
    return Chmod(octal=mode)


def _names_directory(dest: str) -> bool:
    """BuildKit treats '.', a trailing '/' and a final '.'/'..' as naming a directory."""
    return dest in ("", ".") or dest.endswith("/") or posixpath.basename(dest) in (".", "..")


def _group_by_match(files: Iterable[SourceFile]) -> list[list[SourceFile]]:
    groups: list[list[SourceFile]] = []
    for f in files:
        if f.rel == "":
            groups.append([f])
        else:
            groups[-1].append(f)
    return groups


class _Draft:
    """The layer being assembled: path -> Change, with the image consulted for what exists."""

    def __init__(self, tree: DestTree, meta: CopyMeta) -> None:
        self.tree = tree
        self.meta = meta
        self.entries: dict[str, Change] = {}
        self.inodes: dict[str, tuple[int, int, int]] = {}  # path -> (source, st_dev, st_ino)
        self.source = 0  # which of the COPY's sources is being put
        # directories this COPY creates: nothing below them can exist in the image, so their
        # children need no symlink resolution (the hot path for a big directory copy)
        self.fresh: set[str] = set()

    def resolve_dest(self, dest: str, workdir: str) -> str:
        absolute = dest if dest.startswith("/") else posixpath.join("/", workdir, dest)
        path = normalize_path(absolute)
        return self.tree.resolve(path) if path else ""

    def kind_at(self, path: str) -> ChangeKind | None:
        """What is at path now, without following a final symlink ('' is the root dir)."""
        if not path:
            return ChangeKind.DIR
        if path in self.entries:
            return self.entries[path].kind
        if posixpath.dirname(path) in self.fresh:
            return None
        # the parent is a real directory here, so a path that resolves elsewhere is a symlink
        # (possibly dangling, which lookup cannot see)
        if self.tree.resolve(path) != path:
            return ChangeKind.SYMLINK
        node = self.tree.lookup(path)
        return None if node is None else node.kind

    def ensure_dir(self, path: str) -> None:
        """Make path and its ancestors directories in the layer (BuildKit's MkdirAll)."""
        known = self.entries.get(path)
        if known is not None and known.kind is ChangeKind.DIR:
            return  # a directory entry's ancestors were all made directories before it
        parts = path.split("/") if path else []
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub in self.entries and self.entries[sub].is_dir:
                continue
            kind = self.kind_at(sub)
            if kind is ChangeKind.DIR:
                node = self.tree.lookup(sub)
                assert node is not None
                self.entries[sub] = dataclasses.replace(node, path=sub, content=None)
            elif kind is None:
                uid, gid = self.meta.chown or (0, 0)
                self.entries[sub] = Change(
                    sub,
                    ChangeKind.DIR,
                    mode=0o755,
                    uid=uid,
                    gid=gid,
                    mtime=self.meta.created_mtime,
                )
                self.fresh.add(sub)
            else:
                raise BuildError(
                    f"cannot copy to /{path}: /{sub} exists in the image as a {kind.value}, "
                    f"not a directory",
                    hint="copy to another destination, or remove that path in an earlier step",
                )

    def put_match(self, dest: str, dest_is_dir: bool, group: list[SourceFile]) -> None:
        """One matched source: a directory's contents go into dest, anything else goes into
        dest when it is a directory, else becomes dest."""
        top = group[0]
        if top.is_dir:
            self.ensure_dir(dest)
            self._put_below(f"{dest}/" if dest else "", group[1:])
            return
        target = posixpath.join(dest, posixpath.basename(top.source)) if dest_is_dir else dest
        self.ensure_dir(dest if dest_is_dir else posixpath.dirname(target))
        self.put(target, top)

    def _put_below(self, prefix: str, entries: list[SourceFile]) -> None:
        """`put` of each entry walked below a matched directory: the hot loop of a big COPY.
        Its common case is written out (what `put`, `entry_change` and `_store` do for it): a
        regular file or directory, new in the layer, whose parent this COPY created, so no
        parent needs making and nothing is in the way. Anything else goes through `put`."""
        meta, fresh, layer, inodes = self.meta, self.fresh, self.entries, self.inodes
        if meta.chmod is not None or meta.mtime is not None:
            for entry in entries:
                self.put(prefix + entry.rel, entry)
            return
        owner, keep_owner = meta.chown or (0, 0), meta.chown is None and meta.preserve_owner
        file_kind, dir_kind, source = ChangeKind.FILE, ChangeKind.DIR, self.source
        for entry in entries:
            path = prefix + entry.rel
            st = entry.st
            fmt = st.st_mode & 0o170000
            if (fmt != 0o100000 and fmt != 0o040000) or path in layer:
                self.put(path, entry)
                continue
            if path.rpartition("/")[0] not in fresh:
                self.put(path, entry)
                continue
            uid, gid = (st.st_uid, st.st_gid) if keep_owner else owner
            mode, mtime = st.st_mode & 0o7777, st.st_mtime_ns // 1_000_000_000
            if fmt == 0o040000:
                layer[path] = Change(path, dir_kind, mode, uid, gid, 0, mtime)
                fresh.add(path)
                continue
            real = entry.real
            layer[path] = Change(
                path, file_kind, mode, uid, gid, st.st_size, mtime, "", 0, 0,
                capability(real), FileSource(real, st),
            )
            if st.st_nlink > 1:
                inodes[path] = (source, st.st_dev, st.st_ino)

    def put_inline(self, dest: str, dest_is_dir: bool, name: str, data: bytes) -> None:
        target = posixpath.join(dest, name) if dest_is_dir else dest
        self.ensure_dir(posixpath.dirname(target))
        uid, gid = self.meta.chown or (0, 0)
        chmod = self.meta.chmod
        change = Change(
            target,
            ChangeKind.FILE,
            mode=chmod.apply(0o644, is_dir=False) if chmod else 0o644,
            uid=uid,
            gid=gid,
            size=len(data),
            mtime=self.meta.created_mtime,
            content=lambda: io.BytesIO(data),
        )
        self._store(change, None)

    def put(self, path: str, src: SourceFile) -> None:
        parent = posixpath.dirname(path)
        self.ensure_dir(parent)
        change = entry_change(src, path, self.meta)
        if change is None:
            return  # sockets cannot be stored in a layer
        self._store(change, src.st, parent)

    def _store(self, change: Change, st: Stat | None, parent: str | None = None) -> None:
        """Put `change` in the layer; `parent`: its path's dirname, when the caller has it
        (`kind_at` of each of a big COPY's entries, written out for the common case)."""
        path = change.path
        if path and path not in self.entries and parent is not None and parent in self.fresh:
            existing = None
        else:
            existing = self.kind_at(path)
        is_dir = change.kind is ChangeKind.DIR
        if is_dir and existing not in (None, ChangeKind.DIR):
            raise BuildError(
                f"cannot copy directory to /{path}: a {existing.value} is there "
                f"(cannot copy to non-directory)",
                hint="copy to another destination, or remove that path in an earlier step",
            )
        if not is_dir and existing is ChangeKind.DIR:
            raise BuildError(
                f"cannot replace directory /{path} with a {change.kind.value}",
                hint="end the destination with '/' to copy into the directory",
            )
        if is_dir and existing is None:
            self.fresh.add(path)
        self.entries[path] = change
        self.inodes.pop(path, None)
        if st is not None and change.kind is ChangeKind.FILE and st.st_nlink > 1:
            self.inodes[path] = (self.source, st.st_dev, st.st_ino)

    def finish(self) -> list[Change]:
        """Changes in layer order; later copies of a hard-linked inode become HARDLINKs to the
        first one in that order, so the tar writer meets the data before the links."""
        first: dict[tuple[int, int, int], str] = {}
        out = []
        for path in sorted(self.entries, key=sort_key):
            change = self.entries[path]
            inode = self.inodes.get(path)
            if inode is not None and inode in first:
                change = dataclasses.replace(
                    change, kind=ChangeKind.HARDLINK, link=first[inode], size=0, content=None
                )
            elif inode is not None:
                first[inode] = path
            out.append(change)
        return out
