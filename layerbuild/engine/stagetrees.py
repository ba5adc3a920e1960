"""The file trees of a build's stages: a cache beside the frozen StageStates, not part of them.

A stage's tree (image/tree.FileTree: paths, kinds, owners, which layer holds each file) is
loaded from its layers the first time a step needs it (WORKDIR on a miss, COPY, a RUN's user
lookup); most metadata steps never look, and a fully cached build never loads one. Once loaded,
the Changes of each layer the stage adds after it are kept pending and applied only when the
tree is next read, so a COPY of 20k files followed only by RUNs never pays for applying them.

Stages run on threads of their own (engine/scheduler.py): one stage's thread advances its tree
while others may read the trees of finished stages (COPY --from), so each call holds a lock.

Each tree is checked against the state that asks for it: it holds `layers`, and with its pending
Changes it makes the state's layers exactly; otherwise (a layer whose Changes are not known: a
RUN or a COPY that hit) it is loaded again from the layers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from layerbuild.engine.state import StageState
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.image.tree import FileTree
from layerbuild.store.layout import Store


@dataclass
class _Loaded:
    """A stage's file tree and the layers it reflects, with the changes not yet applied."""

    tree: FileTree
    layers: tuple[Layer, ...]  # what the tree holds
    pending: list[tuple[Layer, list[Change]]] = field(default_factory=list)  # added since

    def makes(self, layers: tuple[Layer, ...]) -> bool:
        """Whether the tree and its pending Changes are the rootfs of `layers`."""
        return self.layers + tuple(layer for layer, _ in self.pending) == layers


class StageTrees:
    """The loaded trees of one build's stages, by stage name."""

    def __init__(self, store: Store, *, keep_entries: bool = True) -> None:
        self.store = store
        self.keep_entries = keep_entries  # False: a dry run (store/layerentries.py)
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.RLock()

    def tree(self, state: StageState) -> FileTree:
        """The tree of `state`'s layers, its pending Changes applied."""
        with self._lock:
            return self._tree(state)

    def _tree(self, state: StageState) -> FileTree:
        loaded = self._loaded.get(state.name)
        if loaded is None or not loaded.makes(state.layers):
            from layerbuild.engine.imageread import load_tree  # not for a fully cached build

            tree = load_tree(self.store, state.layers, keep=self.keep_entries)
            loaded = _Loaded(tree, state.layers)
            self._loaded[state.name] = loaded
        for layer, changes in loaded.pending:
            loaded.tree.apply(changes, layer.digest)
        loaded.layers, loaded.pending = state.layers, []
        return loaded.tree

    def loaded(self, state: StageState) -> tuple[FileTree, list[list[Change]]] | None:
        """The tree as last brought up to date, and the Changes pending on it, when one is
        loaded for `state` (for a lookup that may do without applying them); else None."""
        with self._lock:
            return self._loaded_for(state)

    def _loaded_for(self, state: StageState) -> tuple[FileTree, list[list[Change]]] | None:
        loaded = self._loaded.get(state.name)
        if loaded is None or not loaded.makes(state.layers):
            return None
        return loaded.tree, [changes for _, changes in loaded.pending]

    def advance(self, before: StageState, after: StageState, changes: list[Change] | None) -> None:
        """A step took the stage from `before` to `after`; `changes`: those of the layer it
        added, when known (None: the tree is loaded again when next needed)."""
        with self._lock:
            self._advance(before, after, changes)

    def _advance(
        self, before: StageState, after: StageState, changes: list[Change] | None
    ) -> None:
        if after.layers == before.layers:
            return
        loaded = self._loaded.get(before.name)
        if loaded is None:  # nothing to keep up to date: the layers hold the Changes
            return
        kept, added = after.layers[: len(before.layers)], after.layers[len(before.layers) :]
        if (
            changes is None
            or kept != before.layers
            or len(added) != 1
            or not loaded.makes(before.layers)
        ):
            del self._loaded[before.name]
            return
        loaded.pending.append((added[0], changes))
