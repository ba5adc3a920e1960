"""The hidden files of image/waste.py summed for a reader: the biggest wasted paths first, and
the directories that hold the image's bytes with the share of them that is wasted.

A `rm -rf /var/lib/apt/lists/*` leaves one whiteout per file of the directory, so paths that
the same pair of layers wrote and hid in the same way are folded into their directory
(`var/lib/apt/lists/*`): the reader needs the one place to fix, not a thousand names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from layerbuild.image.changes import Change
from layerbuild.image.waste import HiddenBy, HiddenFile

_FOLD_AT = 2  # siblings hidden alike that become one `dir/*` entry


@dataclass(frozen=True)
class WastedPath:
    """Bytes written by `added` (the layer that wrote most of them) and hidden by `removed`."""

    path: str  # a layer path; `dir/*` for folded siblings
    size: int
    files: int
    added: int
    removed: int
    how: HiddenBy


def wasted_paths(hidden: Iterable[HiddenFile]) -> list[WastedPath]:
    """Hidden bytes by the path the hiding layer named, biggest first."""
    groups: dict[tuple[str, int, int, HiddenBy], list[int]] = defaultdict(list)
    for h in hidden:
        groups[(h.root, h.added, h.removed, h.how)].append(h.size)
    paths = [
        WastedPath(root, sum(sizes), len(sizes), added, removed, how)
        for (root, added, removed, how), sizes in groups.items()
    ]
    return sorted(_fold(paths), key=lambda p: (-p.size, p.path))


def _fold(paths: list[WastedPath]) -> list[WastedPath]:
    siblings: dict[tuple[str, int, int, HiddenBy], list[WastedPath]] = defaultdict(list)
    for p in paths:
        siblings[(_parent(p.path), p.added, p.removed, p.how)].append(p)
    out: list[WastedPath] = []
    for (parent, added, removed, how), group in siblings.items():
        if len(group) < _FOLD_AT:
            out.extend(group)
            continue
        name = f"{parent}/*" if parent else "*"
        size = sum(p.size for p in group)
        out.append(WastedPath(name, size, sum(p.files for p in group), added, removed, how))
    return out


@dataclass(frozen=True)
class DirShare:
    """A directory: the bytes all layers ship under it, and how many of them are hidden."""

    path: str
    shipped: int
    wasted: int
    children: tuple[DirShare, ...]


def dir_shares(
    layers: Sequence[Sequence[Change]],
    hidden: Iterable[HiddenFile],
    *,
    depth: int = 4,
    width: int = 5,
) -> DirShare:
    """The root and, `depth` levels down, its `width` biggest directories by shipped bytes."""
    shipped: dict[str, int] = defaultdict(int)
    wasted: dict[str, int] = defaultdict(int)
    for changes in layers:
        for change in changes:
            if change.size:
                _add_up(shipped, change.path, change.size, depth)
    for h in hidden:
        _add_up(wasted, h.path, h.size, depth)
    kids: dict[str, list[str]] = defaultdict(list)
    for path in shipped:
        if path:
            kids[_parent(path)].append(path)

    def node(path: str) -> DirShare:
        biggest = sorted(kids.get(path, ()), key=lambda p: (-shipped[p], p))[:width]
        return DirShare(path, shipped[path], wasted[path], tuple(node(p) for p in biggest))

    return node("")


def _add_up(totals: dict[str, int], path: str, size: int, depth: int) -> None:
    """Add `size` to each directory above `path`, down to `depth` levels."""
    parts = path.split("/")[:-1][:depth]
    totals[""] += size
    for i in range(1, len(parts) + 1):
        totals["/".join(parts[:i])] += size


def _parent(path: str) -> str:
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else ""
