"""Dive's efficiency score, wasted bytes and user-wasted percent, computed as dive computes them
(wagoodman/dive: dive/filetree/efficiency.go, dive/image/analysis.go), so that its numbers and
ours can be put side by side and its CI thresholds mean the same here.

Dive's definition, which this module follows:
- Each layer is a tree of its tar's entries (parents created where the tar has none); only its
  leaves are counted: files, links, empty directories and whiteouts. A directory that holds
  entries in the layer is not counted; an opaque marker is ignored altogether.
- A leaf counts its tar header size (a regular file's bytes; 0 for directories and links). A
  whiteout counts 0 if what it deletes was not a directory; if it was, it counts the bytes of
  everything below that directory in the layers under it, stacked (whiteouts applied, an
  entry's metadata replacing the one below it).
- Per path: the sum of what every layer counted there, and the smallest of those counts.
  Efficiency = sum of the smallest / sum of the sums (1.0 when nothing was counted).
- Wasted bytes = the sum of the sums of the paths counted in two layers or more: a file written
  twice counts both copies, a deleted one its bytes (its whiteout counts 0).
- Image size = every layer's tar header sizes; user size = that without the first layer (the
  base, whatever it is). User-wasted percent = wasted bytes / user size, a ratio (0.1 = 10%).

Where dive gives up, we go on: a whiteout of a path that no lower layer has makes dive stop
counting the rest of that layer; here it counts 0 and the layer's other leaves still count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from layerbuild.image.changes import Change, ChangeKind


@dataclass(frozen=True)
class Efficiency:
    score: float
    wasted_bytes: int
    size_bytes: int
    user_size_bytes: int

    @property
    def user_wasted_percent(self) -> float:
        """wasted / user size, as dive divides: no user bytes and waste is +inf, 0/0 is 0."""
        if self.user_size_bytes:
            return self.wasted_bytes / self.user_size_bytes
        return math.inf if self.wasted_bytes else 0.0


@dataclass(frozen=True, slots=True)
class _Node:
    size: int
    is_dir: bool


# dive makes a missing parent with an empty payload: size 0, not a directory
_IMPLICIT = _Node(0, False)


def efficiency(layers: Sequence[Sequence[Change]]) -> Efficiency:
    """Dive's numbers for an image whose layers, bottom first, hold these entries."""
    stacked = _Stacked()
    sums: dict[str, int] = {}
    smallest: dict[str, int] = {}
    counted: dict[str, int] = {}
    sizes = [sum(c.size for c in changes) for changes in layers]
    for changes in layers:
        nodes = _layer_nodes(changes)
        parents = {_parent(path) for path, _ in nodes}
        for (path, is_whiteout), node in nodes.items():
            if path in parents and not is_whiteout:
                continue  # not a leaf of this layer's tree
            size = stacked.whiteout_size(path) if is_whiteout else node.size
            sums[path] = sums.get(path, 0) + size
            smallest[path] = min(smallest.get(path, size), size)
            counted[path] = counted.get(path, 0) + 1
        stacked.lay(nodes)
    total = sum(sums.values())
    score = sum(smallest.values()) / total if total else 1.0
    wasted = sum(s for path, s in sums.items() if counted[path] >= 2)
    return Efficiency(score, wasted, sum(sizes), sum(sizes[1:]))


def _layer_nodes(changes: Sequence[Change]) -> dict[tuple[str, bool], _Node]:
    """The nodes of one layer's tree, keyed by (path, is a whiteout); a later entry for the
    same path replaces the earlier one's payload, as dive's AddPath does."""
    nodes: dict[tuple[str, bool], _Node] = {}
    for change in changes:
        if not change.path:
            continue
        # a node's parents are in `nodes` once it is: the walk up stops at the first one there
        parent = _parent(change.path)
        while parent and (parent, False) not in nodes:
            nodes[(parent, False)] = _IMPLICIT
            parent = _parent(parent)
        if change.kind is ChangeKind.OPAQUE:
            nodes.setdefault((change.path, False), _IMPLICIT)
            continue
        whiteout = change.kind is ChangeKind.WHITEOUT
        nodes[(change.path, whiteout)] = _Node(change.size, change.is_dir)
    return nodes


class _Stacked:
    """The layers below, stacked as dive stacks them, with each path's children."""

    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        self.children: dict[str, set[str]] = {}

    def whiteout_size(self, path: str) -> int:
        gone = self.nodes.get(path)
        if gone is None or not gone.is_dir:
            return 0
        return sum(self.nodes[p].size for p in self._below(path))

    def lay(self, nodes: dict[tuple[str, bool], _Node]) -> None:
        """Lay one layer's nodes on top: a whiteout removes a subtree, every other node
        replaces the payload at its path (its children stay)."""
        for (path, is_whiteout), node in nodes.items():
            if not is_whiteout:
                if path not in self.nodes:
                    self.children.setdefault(_parent(path), set()).add(path)
                self.nodes[path] = node
            elif path in self.nodes:
                for gone in [path, *self._below(path)]:
                    del self.nodes[gone]
                    self.children.pop(gone, None)
                self.children.get(_parent(path), set()).discard(path)

    def _below(self, path: str) -> list[str]:
        found: list[str] = []
        pending = list(self.children.get(path, ()))
        while pending:
            current = pending.pop()
            found.append(current)
            pending.extend(self.children.get(current, ()))
        return found


def _parent(path: str) -> str:
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else ""
