"""What an image's layers waste: bytes a layer ships that a later layer deletes or replaces.

A pull downloads every layer whole, so a file written in one layer and deleted (whiteout),
hidden (an opaque directory) or written again in a later one costs its bytes in every pull
and is in no container's filesystem. This module stacks the layers' entries the way an
unpacker does (OCI image-spec layer.md: a layer's whiteouts and opaque markers act on the
layers below it first, then its entries apply; a non-directory over anything replaces it, a
directory over a directory only changes its metadata) and records, for each hidden file, the
layer that wrote it, the layer that hid it and the path that layer named.

Pure: it takes each layer's Changes (image/tarreader.read_changes, without content) and never
reads a blob. Dive's efficiency score, which counts differently, is image/efficiency.py.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from layerbuild.image.changes import Change, ChangeKind


class HiddenBy(enum.Enum):
    DELETED = "deleted"  # a whiteout of the file or of a directory above it
    OPAQUE = "opaque"  # an opaque marker on a directory above it
    REPLACED = "replaced"  # a later layer wrote the same path again


@dataclass(frozen=True)
class HiddenFile:
    """One file's bytes in layer `added` that layer `removed` hides."""

    path: str
    size: int
    added: int
    removed: int
    root: str  # the path the hiding layer named: the whiteout, the opaque dir, the new file
    how: HiddenBy


@dataclass(frozen=True)
class LayerStats:
    """One layer's entries against the layers below it."""

    index: int
    content_bytes: int  # the bytes of its regular files (dive's layer size)
    added: int  # entries at paths the layers below did not have
    changed: int  # entries at paths the layers below had
    deleted: int  # whiteouts and opaque markers
    wasted_bytes: int  # bytes of this layer that later layers hide
    hides_bytes: int  # bytes of lower layers that this layer hides


@dataclass(frozen=True)
class Waste:
    layers: tuple[LayerStats, ...]
    hidden: tuple[HiddenFile, ...]

    @property
    def content_bytes(self) -> int:
        return sum(layer.content_bytes for layer in self.layers)

    @property
    def wasted_bytes(self) -> int:
        return sum(h.size for h in self.hidden)


_REMOVALS = (ChangeKind.WHITEOUT, ChangeKind.OPAQUE)


@dataclass(slots=True)
class _Held:
    layer: int
    size: int
    is_dir: bool


@dataclass
class _Stack:
    """The merged tree so far: who wrote each visible path, and each directory's children."""

    visible: dict[str, _Held] = field(default_factory=lambda: {"": _Held(-1, 0, True)})
    children: dict[str, set[str]] = field(default_factory=lambda: {"": set()})

    def remove(self, path: str) -> Iterator[tuple[str, _Held]]:
        """Drop `path` and everything below it; yields what was dropped."""
        if path not in self.visible or not path:
            return
        self.children[_parent(path)].discard(path)
        pending = [path]
        while pending:
            current = pending.pop()
            yield current, self.visible.pop(current)
            pending.extend(self.children.pop(current, ()))

    def put(self, path: str, held: _Held) -> Iterator[tuple[str, _Held]]:
        """Set `path` (parents made directories, as tar extractors do); yields what it hid."""
        missing: list[str] = []
        parent = _parent(path)
        while not (parent in self.visible and self.visible[parent].is_dir):
            missing.append(parent)
            parent = _parent(parent)
        for directory in reversed(missing):
            yield from self.remove(directory)
            self.link(directory, _Held(held.layer, 0, True))
        existing = self.visible.get(path)
        if existing is not None and existing.is_dir and held.is_dir:
            self.visible[path] = held  # metadata only: the children stay
            return
        if existing is not None:
            yield from self.remove(path)
        self.link(path, held)

    def link(self, path: str, held: _Held) -> None:
        """Set a path that is not there, under a directory that is."""
        self.visible[path] = held
        self.children[_parent(path)].add(path)
        if held.is_dir:
            self.children.setdefault(path, set())


def analyze_waste(layers: Sequence[Sequence[Change]]) -> Waste:
    """The waste of an image whose layers, bottom first, hold these entries."""
    stack = _Stack()
    hidden: list[HiddenFile] = []
    stats: list[tuple[int, int, int, int, int]] = []
    for index, changes in enumerate(layers):
        hid_before = len(hidden)
        deleted = _remove(stack, changes, index, hidden)
        content, added, changed = _write(stack, changes, index, hidden)
        hides = sum(h.size for h in hidden[hid_before:])
        stats.append((content, added, changed, deleted, hides))
    wasted = [0] * len(layers)
    for h in hidden:
        wasted[h.added] += h.size
    return Waste(
        layers=tuple(
            LayerStats(i, content, added, changed, deleted, wasted[i], hides)
            for i, (content, added, changed, deleted, hides) in enumerate(stats)
        ),
        hidden=tuple(hidden),
    )


def _remove(stack: _Stack, changes: Sequence[Change], index: int, hidden: list[HiddenFile]) -> int:
    """Apply a layer's whiteouts and opaque markers (they act on the layers below first);
    returns how many there were."""
    deleted = 0
    for change in changes:
        if change.kind is ChangeKind.WHITEOUT:
            deleted += 1
            dropped = list(stack.remove(change.path))
            hidden += _hidden(dropped, index, change.path, HiddenBy.DELETED)
        elif change.kind is ChangeKind.OPAQUE:
            deleted += 1
            for child in sorted(stack.children.get(change.path, ())):
                dropped = list(stack.remove(child))
                hidden += _hidden(dropped, index, change.path, HiddenBy.OPAQUE)
    return deleted


def _write(
    stack: _Stack, changes: Sequence[Change], index: int, hidden: list[HiddenFile]
) -> tuple[int, int, int]:
    """Apply a layer's other entries; returns (file bytes, added, changed)."""
    added = changed = content = 0
    visible = stack.visible
    for change in changes:
        path = change.path
        if change.kind in _REMOVALS or not path:
            continue
        content += change.size
        held = _Held(index, change.size, change.kind is ChangeKind.DIR)
        if path in visible:
            changed += 1
        else:
            added += 1
            parent = visible.get(_parent(path))
            if parent is not None and parent.is_dir:  # the common case: nothing to hide
                stack.link(path, held)
                continue
        dropped = list(stack.put(path, held))
        if dropped:
            hidden += _hidden(dropped, index, path, HiddenBy.REPLACED)
    return content, added, changed


def _hidden(
    dropped: list[tuple[str, _Held]], index: int, root: str, how: HiddenBy
) -> list[HiddenFile]:
    # directories and links carry no bytes; the base tree's root (layer -1) is no layer's
    return [
        HiddenFile(path, held.size, held.layer, index, root, how)
        for path, held in dropped
        if held.size > 0 and held.layer >= 0
    ]


def _parent(path: str) -> str:
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else ""
