"""The WORKDIR op: the config's working directory, and a layer with the directories it names
when they are missing (owned by USER), keyed by its expanded text (the directories follow from
the parent key, so they are worked out on a miss only: they come from the image's tree, which
a hit never needs to load, nor to import the layer readers for)."""

from __future__ import annotations

from dataclasses import dataclass

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.engine import meta as m
from layerbuild.engine.filesteps import FileSteps
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
from layerbuild.engine.state import StageState
from layerbuild.plan.keys import CacheKey, Inputs
from layerbuild.store.cacheindex import CacheRecord


@dataclass(frozen=True)
class WorkdirOp:
    """WORKDIR: the config's working directory, and the directory when missing."""

    dockerfile: Dockerfile
    files: FileSteps
    layers: LayerWriter

    def prepare(self, step: Step) -> Prepared:
        return Prepared(expanded(step, self.dockerfile))

    @staticmethod
    def cache_inputs(state: StageState, prepared: Prepared) -> Inputs:
        return instruction_inputs(prepared.instr)

    def execute(self, step: Step, prepared: Prepared, key: CacheKey) -> Done:
        state, instr = step.state, prepared.instr
        assert isinstance(instr, ins.Workdir)
        changes = self.files.workdir_changes(state, instr)
        state = state.with_meta(m.apply_metadata(state.meta, instr))
        state, layer = self.layers.add_layer(state, instr, changes)
        return Done(state, layer, files_note(changes), changes)

    def reuse(self, step: Step, prepared: Prepared, record: CacheRecord) -> Done:
        return take_record(step.state, record, None)
