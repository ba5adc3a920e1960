"""engine/state: a step makes a new StageState and leaves the one it was given as it was."""

from __future__ import annotations

import dataclasses

import pytest

from layerbuild.digest import Digest
from layerbuild.dockerfile.scope import VarScope
from layerbuild.engine import meta as m
from layerbuild.engine.state import StageState
from layerbuild.image.config import History
from layerbuild.image.manifest import Layer

KEY = Digest("sha256:" + "a" * 64)
LAYER = Layer(Digest("sha256:" + "1" * 64), Digest("sha256:" + "2" * 64), 10, "media")


def _state() -> StageState:
    config = m.new_stage_config(None, "amd64", "linux")
    return StageState("build", m.StageMeta(config), (), VarScope({}, {}, {}), KEY)


def test_a_state_cannot_be_edited() -> None:
    state = _state()
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.key = Digest("sha256:" + "b" * 64)  # type: ignore[misc]


def test_each_change_is_a_new_state() -> None:
    state = _state()
    other = Digest("sha256:" + "b" * 64)
    config = state.meta.config.with_layer(LAYER.diff_id, History(created_by="COPY"))
    keyed = state.with_key(other)
    layered = state.with_layer(LAYER, m.StageMeta(config))
    assert (keyed.key, layered.layers, layered.meta.config) == (other, (LAYER,), config)
    assert (state.key, state.layers, state.meta) == (KEY, (), _state().meta)
    assert state.with_config(config).meta == m.StageMeta(config)
    assert state.with_meta(m.StageMeta(config, cmd_set=True)).meta.cmd_set


def test_the_source_ref_names_the_key_and_the_result() -> None:
    state = _state()
    assert state.source_ref().startswith(f"stage:{KEY}@sha256:")
    assert state.with_key(Digest("sha256:" + "b" * 64)).source_ref() != state.source_ref()
