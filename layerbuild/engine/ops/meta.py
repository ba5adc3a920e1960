"""The metadata op: ENV, LABEL, EXPOSE, VOLUME, STOPSIGNAL, USER, SHELL, HEALTHCHECK, ONBUILD,
CMD, ENTRYPOINT, MAINTAINER and ARG change the config only (engine/meta.py), keyed by their
expanded text, with an `empty_layer` history entry as BuildKit writes."""

from __future__ import annotations

from dataclasses import dataclass

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.engine import meta as m
from layerbuild.engine.layerwriter import LayerWriter
from layerbuild.engine.ops.base import (
    Done,
    Prepared,
    Step,
    expanded,
    instruction_inputs,
    take_record,
)
from layerbuild.engine.state import StageState
from layerbuild.plan.keys import CacheKey, Inputs
from layerbuild.store.cacheindex import CacheRecord


@dataclass(frozen=True)
class MetaOp:
    """Instructions that only change the config: ENV, LABEL, CMD and the like."""

    dockerfile: Dockerfile
    layers: LayerWriter

    def prepare(self, step: Step) -> Prepared:
        return Prepared(expanded(step, self.dockerfile))

    @staticmethod
    def cache_inputs(state: StageState, prepared: Prepared) -> Inputs:
        return instruction_inputs(prepared.instr)

    def execute(self, step: Step, prepared: Prepared, key: CacheKey) -> Done:
        state = step.state.with_meta(m.apply_metadata(step.state.meta, prepared.instr))
        return Done(self.layers.history(state, prepared.instr, empty=True), None)

    def reuse(self, step: Step, prepared: Prepared, record: CacheRecord) -> Done:
        return take_record(step.state, record, None)


@dataclass(frozen=True)
class CmdOp(MetaOp):
    """CMD: a hit keeps that the stage set one (an ENTRYPOINT after it leaves it alone)."""

    def reuse(self, step: Step, prepared: Prepared, record: CacheRecord) -> Done:
        return take_record(step.state, record, None, cmd=True)


@dataclass(frozen=True)
class EnvOp(MetaOp):
    """ENV: its expanded values are the stage's variables from here on."""

    def prepare(self, step: Step) -> Prepared:
        prepared = super().prepare(step)
        assert isinstance(prepared.instr, ins.Env)
        for name, value in prepared.instr.pairs:
            step.state.scope.set_env(name, value)
        return prepared


@dataclass(frozen=True)
class ArgOp(MetaOp):
    """ARG: declared in the stage's scope, which expands each default when it is used; the
    config does not change."""

    def prepare(self, step: Step) -> Prepared:
        assert isinstance(step.instr, ins.Arg)
        source, escape = self.dockerfile.source, self.dockerfile.escape
        step.state.scope.apply_arg(step.instr, escape=escape, source=source)
        return Prepared(step.instr)

    def execute(self, step: Step, prepared: Prepared, key: CacheKey) -> Done:
        # BuildKit's dispatchArg records the ARG as written (defaults unexpanded)
        return Done(self.layers.history(step.state, prepared.instr, empty=True), None)
