"""engine/stagetrees: a stage's tree is loaded once, on first need; the Changes of the layers
added after it wait until it is next read, and a layer whose Changes are unknown reloads it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from layerbuild.digest import Digest
from layerbuild.dockerfile.scope import VarScope
from layerbuild.engine import imageread
from layerbuild.engine import meta as m
from layerbuild.engine.stagetrees import StageTrees
from layerbuild.engine.state import StageState
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.manifest import Layer
from layerbuild.image.tree import FileTree
from layerbuild.store.layout import Store


def _layer(n: int) -> Layer:
    return Layer(Digest(f"sha256:{n:064x}"), Digest(f"sha256:{n + 100:064x}"), 1, "media")


def _file(path: str) -> list[Change]:
    return [Change(path, ChangeKind.FILE)]


# what each layer holds, as load_tree would read it from its blob
CONTENT = {_layer(n).digest: _file(f"f{n}") for n in range(4)}


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counts: list[int] = []

    def load_tree(store: Store, layers: Sequence[Layer], *, keep: bool = True) -> FileTree:
        counts.append(len(layers))
        tree = FileTree()
        for layer in layers:
            tree.apply(CONTENT[layer.digest], layer.digest)
        return tree

    monkeypatch.setattr(imageread, "load_tree", load_tree)
    return counts


def _state(*layers: Layer) -> StageState:
    config = m.new_stage_config(None, "amd64", "linux")
    key = Digest("sha256:" + "a" * 64)
    return StageState("build", m.StageMeta(config), layers, VarScope({}, {}, {}), key)


def _paths(tree: FileTree) -> list[str]:
    return sorted(c.path for c in tree.walk())


def test_no_tree_is_loaded_until_one_is_read(tmp_path: Path, loads: list[int]) -> None:
    trees, before = StageTrees(Store(tmp_path)), _state(_layer(0))
    after = _state(_layer(0), _layer(1))
    trees.advance(before, after, _file("f1"))
    assert loads == [] and trees.loaded(after) is None
    assert _paths(trees.tree(after)) == ["f0", "f1"]
    assert loads == [2]  # from the layers, the Changes were not kept


def test_changes_after_a_load_wait_for_the_next_read(tmp_path: Path, loads: list[int]) -> None:
    trees, first = StageTrees(Store(tmp_path)), _state(_layer(0))
    trees.tree(first)
    second = _state(_layer(0), _layer(1))
    trees.advance(first, second, _file("f1"))
    loaded = trees.loaded(second)
    assert loaded is not None
    tree, pending = loaded
    assert _paths(tree) == ["f0"] and pending == [_file("f1")]  # not applied yet
    assert _paths(trees.tree(second)) == ["f0", "f1"]
    assert loads == [1]  # brought up to date, not loaded again


def test_unknown_changes_load_the_tree_again(tmp_path: Path, loads: list[int]) -> None:
    trees, first = StageTrees(Store(tmp_path)), _state(_layer(0))
    trees.tree(first)
    second = _state(_layer(0), _layer(2))
    trees.advance(first, second, None)  # a RUN that hit: its Changes were never read
    assert trees.loaded(second) is None
    assert _paths(trees.tree(second)) == ["f0", "f2"]
    assert loads == [1, 2]


def test_a_state_the_tree_does_not_lead_to_reloads(tmp_path: Path, loads: list[int]) -> None:
    trees = StageTrees(Store(tmp_path))
    trees.tree(_state(_layer(0)))
    other = _state(_layer(3))  # same stage name, other layers
    assert trees.loaded(other) is None
    assert _paths(trees.tree(other)) == ["f3"]
    assert loads == [1, 1]


def test_a_step_without_a_layer_keeps_the_tree(tmp_path: Path, loads: list[int]) -> None:
    trees, state = StageTrees(Store(tmp_path)), _state(_layer(0))
    trees.tree(state)
    trees.advance(state, state.with_key(Digest("sha256:" + "b" * 64)), None)
    assert trees.loaded(state) is not None
    trees.tree(state)
    assert loads == [1]
