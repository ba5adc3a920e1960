"""The WORKDIR op: the config's working directory, and a layer with the directories it names
when they are missing (owned by USER), keyed by its expanded text (the directories follow from
the parent key)."""

from __future__ import annotations

from dataclasses import dataclass

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.engine import meta as m
from layerbuild.engine.filesteps import FileSteps, StageState
from layerbuild.engine.layerwriter import LayerWriter
from layerbuild.engine.ops.base import (
    Done,
    Prepared,
    Step,
    expanded,
    files_note,
    instruction_inputs,
    take_record,
)
from layerbuild.plan.keys import CacheKey, Inputs
from layerbuild.store.cacheindex import CacheRecord


@dataclass(frozen=True)
class WorkdirOp:
    dockerfile: Dockerfile
    files: FileSteps
    layers: LayerWriter

    def prepare(self, step: Step) -> Prepared:
        instr = expanded(step, self.dockerfile)
        assert isinstance(instr, ins.Workdir)
        return Prepared(instr, changes=self.files.workdir_changes(step.state, instr))

    @staticmethod
    def cache_inputs(state: StageState, prepared: Prepared) -> Inputs:
        return instruction_inputs(prepared.instr)

    def execute(self, step: Step, prepared: Prepared, key: CacheKey) -> Done:
        state, changes = step.state, prepared.changes or []
        state.meta = m.apply_metadata(state.meta, prepared.instr)
        layer = self.layers.add_layer(state, prepared.instr, changes)
        return Done(layer, files_note(prepared.changes))

    def reuse(self, step: Step, prepared: Prepared, record: CacheRecord) -> Done:
        return take_record(step.state, record, prepared.changes)
