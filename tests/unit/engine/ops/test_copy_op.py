"""engine/ops/copy: a COPY is keyed by its text, where its sources come from and the digest
of its Changes; what prepare read besides (the Changes, per-file summaries, a layer packed
meanwhile) is not an input."""

from __future__ import annotations

import gc
from dataclasses import replace

import pytest

from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.ops.copy import CopyOp, CopyPrepared, _collections_paused
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.manifest import Layer
from tests.unit.engine.ops.conftest import MakeStage, parse

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
SOURCES = "sha256:" + "b" * 64


def _prepared(line: str = "COPY --chown=1:2 src/ /app/") -> CopyPrepared:
    changes = [Change("app", ChangeKind.DIR, 0o755, 1, 2)]
    return CopyPrepared(
        parse(line), changes, {"app/x": "sha256:c 0644 1:2"}, None, "context", SOURCES
    )


def test_the_inputs_are_instruction_source_and_sources_digest(stage: MakeStage) -> None:
    prepared = _prepared()
    assert CopyOp.cache_inputs(stage(), prepared) == (
        ("instruction", ins.describe(prepared.instr)),
        ("from", "context"),
        ("sources", SOURCES),
    )


def test_what_prepare_read_besides_is_not_keyed(stage: MakeStage) -> None:
    prepared = _prepared()
    layer = Layer(Digest("sha256:" + "d" * 64), Digest("sha256:" + "e" * 64), 10, GZIP)
    other = replace(prepared, changes=[], files={}, packed=layer)
    assert CopyOp.cache_inputs(stage(), other) == CopyOp.cache_inputs(stage(), prepared)


def test_each_input_changes_the_key(stage: MakeStage) -> None:
    base = CopyOp.cache_inputs(stage(), _prepared())
    variants = [
        _prepared("COPY --chown=1:3 src/ /app/"),
        replace(_prepared(), source_key="stage:sha256:" + "f" * 64),
        replace(_prepared(), sources="sha256:" + "0" * 64),
    ]
    assert all(CopyOp.cache_inputs(stage(), v) != base for v in variants)


def test_the_stage_is_not_an_input(stage: MakeStage) -> None:
    prepared = _prepared()
    other = stage(env={"A": "1"}, user="app", workdir="/srv")
    assert CopyOp.cache_inputs(other, prepared) == CopyOp.cache_inputs(stage(), prepared)


def test_collections_pause_while_changes_are_built_and_resume() -> None:
    assert gc.isenabled()
    with _collections_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _collections_paused():
        raise RuntimeError  # a failed COPY turns collection back on too
    assert gc.isenabled()
    gc.disable()  # someone else's pause is left as it was
    try:
        with _collections_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
