"""LayerFiles: a bounded summary of what one built layer added, changed and removed.

Build history keeps it per step (docs/history.md). It is made only for a step that ran (a hit
adds nothing new), from the Changes the step already holds; whether a written path is new or
replaces one of the parent is told only when the stage's file tree is already loaded, since
loading it for a summary would cost a missed RUN more than the summary is worth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layerbuild.image.changes import Change, ChangeKind

if TYPE_CHECKING:
    from layerbuild.image.tree import FileTree

FIRST_PATHS = 20  # the paths a summary names, in layer order

_REMOVED = (ChangeKind.WHITEOUT, ChangeKind.OPAQUE)


@dataclass(frozen=True, slots=True)
class LayerFiles:
    """`added`/`changed` are None when the parent tree was not at hand (then only `written`,
    their sum, is known). `paths`: the first FIRST_PATHS, each `+ /p` (added), `~ /p`
    (changed), `- /p` (removed) or `* /p` (written, whether new not known). Directories count
    as entries; `bytes` counts regular files' data."""

    written: int
    removed: int
    bytes: int
    added: int | None = None
    changed: int | None = None
    paths: tuple[str, ...] = ()

    def __str__(self) -> str:
        split = f" ({self.added} added, {self.changed} changed)" if self.added is not None else ""
        return f"{self.written} written{split}, {self.removed} removed, {self.bytes} bytes"

    def to_json(self) -> dict[str, object]:
        return {
            "written": self.written,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "bytes": self.bytes,
            "paths": list(self.paths),
        }


def parent_lookup(
    loaded: tuple[FileTree, list[list[Change]]] | None,
) -> Callable[[str], bool] | None:
    """Whether a path exists before the step, from the stage's loaded tree and the Changes
    still pending on it (StageTrees.loaded); None when no tree is loaded."""
    if loaded is None:
        return None
    tree, pending = loaded
    latest: dict[str, bool] = {}
    for changes in pending:
        for change in changes:
            latest[change.path] = change.kind not in _REMOVED
    # directories the tree does not have, by path (True): nothing below them is there either
    # (a missing parent resolves to no entry), so a big COPY into a new directory is not
    # looked up in the tree entry by entry; one lookup per directory instead
    missing: dict[str, bool] = {}

    def absent(directory: str) -> bool:
        gone = missing.get(directory)
        if gone is None:
            above = directory.rpartition("/")[0]
            gone = bool(above) and absent(above) or tree.lookup_nofollow(directory) is None
            missing[directory] = gone
        return gone

    def existed(path: str) -> bool:
        known = latest.get(path)
        if known is not None:
            return known
        parent = path.rpartition("/")[0]
        if parent and absent(parent):
            return False
        return tree.lookup_nofollow(path) is not None

    return existed


def summarize(
    changes: Iterable[Change], existed: Callable[[str], bool] | None = None
) -> LayerFiles:
    """The summary of a layer's Changes; `existed(path)`: whether the parent had `path`."""
    written = removed = size = added = 0
    paths: list[str] = []
    for change in changes:
        if change.kind in _REMOVED:
            removed += 1
            mark = "-"
        else:
            written += 1
            size += change.size if change.kind is ChangeKind.FILE else 0
            if existed is None:
                mark = "*"
            elif existed(change.path):
                mark = "~"
            else:
                added += 1
                mark = "+"
        if len(paths) < FIRST_PATHS:
            paths.append(f"{mark} /{change.path}")
    if existed is None:
        return LayerFiles(written, removed, size, paths=tuple(paths))
    return LayerFiles(written, removed, size, added, written - added, tuple(paths))
