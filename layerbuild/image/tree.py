"""FileTree: the metadata of a root filesystem, built by applying layers' Changes in order.

It answers what COPY/ADD need to know about an image without unpacking it: does ``/app``
exist, is it a directory, where does ``/usr/local/bin`` really point, and which layer blob holds
the data of ``/etc/passwd``. Entries live in a dict keyed by layer path, with a set of child
paths per directory, so 100k-entry trees apply, look up and delete subtrees in linear time.

Layer semantics (OCI image-spec layer.md): within one layer, whiteouts and opaque markers act on
the lower layers only, so they are applied before the layer's other entries; a whiteout deletes
a path and everything below it; an opaque marker empties a directory of what lower layers put
there; a non-directory over a directory replaces it; a directory over a directory only updates
its metadata. A hard link becomes a FILE with its target's data (a rootfs knows no link
entries), and remembers which layer tar holds that data; a link that comes before its target in
the layer is applied after the layer's other entries, as store/unpack.py does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from layerbuild.digest import Digest
from layerbuild.errors import SymlinkLoopError
from layerbuild.image.changes import Change, ChangeKind

MAX_SYMLINKS = 40  # Linux's MAXSYMLINKS: more hops than this is a loop (ELOOP)
_IMPLICIT_DIR_MODE = 0o755


class FileTree:
    """Metadata of a rootfs; the root is the layer path ''."""

    def __init__(self) -> None:
        self._entries: dict[str, Change] = {"": Change("", ChangeKind.DIR, _IMPLICIT_DIR_MODE)}
        self._children: dict[str, set[str]] = {"": set()}
        # path → (layer that holds the data, the data's path in that layer's tar)
        self._data: dict[str, tuple[Digest | None, str]] = {}

    def __len__(self) -> int:
        return len(self._entries) - 1  # the root is always there

    def copy(self) -> FileTree:
        """An independent tree with the same entries (to apply a step's layer on top)."""
        other = FileTree()
        other._entries = dict(self._entries)
        other._children = {path: set(kids) for path, kids in self._children.items()}
        other._data = dict(self._data)
        return other

    def apply(self, changes: Iterable[Change], layer: Digest | None = None) -> None:
        """Apply one layer's changes on top of the tree; ``layer`` is its blob's digest."""
        items = list(changes)
        for change in items:
            if change.kind is ChangeKind.WHITEOUT:
                if change.path:
                    self._remove(change.path)
            elif change.kind is ChangeKind.OPAQUE:
                for child in list(self._children.get(change.path, ())):
                    self._remove(child)
        late: list[Change] = []
        for change in items:
            if change.kind is ChangeKind.HARDLINK and not self._is_file(change.link):
                late.append(change)
            elif change.kind not in (ChangeKind.WHITEOUT, ChangeKind.OPAQUE):
                self._add(change, layer)
        # a link before its data (layers of older layerbuild versions): linked once it is there
        for change in late:
            self._add(change, layer)

    def _is_file(self, path: str) -> bool:
        entry = self._entries.get(path)
        return entry is not None and entry.kind is ChangeKind.FILE

    def _remove(self, path: str) -> None:
        if path not in self._entries:
            return
        self._children[_parent(path)].discard(path)
        stack = [path]
        while stack:
            current = stack.pop()
            del self._entries[current]
            self._data.pop(current, None)
            stack.extend(self._children.pop(current, ()))

    def _add(self, change: Change, layer: Digest | None) -> None:
        path = change.path
        if not path:
            if change.is_dir:  # the root's own metadata ('./' in a tar)
                self._entries[""] = change
            return
        self._ensure_dir(_parent(path))
        existing = self._entries.get(path)
        if existing is not None and not (existing.is_dir and change.is_dir):
            self._remove(path)
            existing = None
        if change.kind is ChangeKind.HARDLINK:
            change = self._link_to_file(change)
        elif change.kind is ChangeKind.FILE:
            self._data[path] = (layer, path)
        self._entries[path] = change
        if existing is None:
            self._children[_parent(path)].add(path)
            if change.is_dir:
                self._children[path] = set()

    def _link_to_file(self, change: Change) -> Change:
        target = self._entries.get(change.link)
        if target is None or target.kind is not ChangeKind.FILE:
            return change  # a dangling or odd link stays what the layer said
        if change.link in self._data:
            self._data[change.path] = self._data[change.link]
        return dataclasses.replace(
            change, kind=ChangeKind.FILE, size=target.size, link="", content=target.content
        )

    def _ensure_dir(self, path: str) -> None:
        """Make ``path`` a directory, creating missing ancestors as tar extractors do."""
        missing: list[str] = []
        while True:
            entry = self._entries.get(path)
            if entry is not None and entry.is_dir:
                break
            missing.append(path)
            path = _parent(path)
        for directory in reversed(missing):
            self._remove(directory)  # a non-directory in the way is replaced
            self._entries[directory] = Change(directory, ChangeKind.DIR, _IMPLICIT_DIR_MODE)
            self._children[directory] = set()
            self._children[_parent(directory)].add(directory)

    def _resolve(self, path: str, follow_final: bool) -> str | None:
        """The layer path ``path`` names, symlinks followed inside the tree as in a chroot;
        None after MAX_SYMLINKS hops. Missing components are kept as written."""
        pending = [c for c in reversed(path.split("/")) if c not in ("", ".")]
        resolved: list[str] = []
        hops = 0
        while pending:
            name = pending.pop()
            if name == "..":
                if resolved:  # '..' at the root stays at the root
                    resolved.pop()
                continue
            candidate = "/".join((*resolved, name))
            entry = self._entries.get(candidate)
            if (
                entry is not None
                and entry.kind is ChangeKind.SYMLINK
                and (pending or follow_final)
            ):
                hops += 1
                if hops > MAX_SYMLINKS:
                    return None
                if entry.link.startswith("/"):
                    resolved.clear()
                pending.extend(c for c in reversed(entry.link.split("/")) if c not in ("", "."))
                continue
            resolved.append(name)
        return "/".join(resolved)

    def resolve(self, path: str) -> str:
        """The layer path of ``path`` with every symlink resolved (the final one too).

        Raises SymlinkLoopError after MAX_SYMLINKS symlinks.
        """
        resolved = self._resolve(path, follow_final=True)
        if resolved is None:
            raise SymlinkLoopError(
                f"too many levels of symbolic links resolving {path!r} in the image",
                hint="a symlink in the image points back at itself; fix the links in the base "
                "image or an earlier step",
            )
        return resolved

    def lookup(self, path: str) -> Change | None:
        """The entry ``path`` names after following symlinks (final one included), or None."""
        resolved = self._resolve(path, follow_final=True)
        return None if resolved is None else self._entries.get(resolved)

    def lookup_nofollow(self, path: str) -> Change | None:
        """The entry at ``path``: symlinks in its parents are followed, the last is not."""
        resolved = self._resolve(path, follow_final=False)
        return None if resolved is None else self._entries.get(resolved)

    def content_ref(self, path: str) -> tuple[Digest | None, str] | None:
        """(layer digest, path of the data in that layer's tar) of a regular file, or None."""
        resolved = self._resolve(path, follow_final=True)
        return None if resolved is None else self._data.get(resolved)

    def walk(self, path: str = "") -> Iterator[Change]:
        """Every entry below ``path`` (not itself), parents before children, names sorted."""
        stack = sorted(self._children.get(path, ()), reverse=True)
        while stack:
            current = stack.pop()
            yield self._entries[current]
            stack.extend(sorted(self._children.get(current, ()), reverse=True))


def _parent(path: str) -> str:
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else ""
