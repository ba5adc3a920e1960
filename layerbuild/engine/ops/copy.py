"""The COPY/ADD op: keyed by the content of what it copies, so `prepare` builds its Changes
(engine/filesteps.copy_changes) and hashes them before the cache is asked.

Its shortcuts are the build's speed-ups (engine/speedups/): a selection unchanged since its
sources digest was recorded hits without building Changes (the quick key); a context never
seen before is packed while it is hashed; on a miss with a RUN after it, the layer's snapshot
is written while it is packed, and that RUN may start on it meanwhile. With NullSpeedups none
of them happens, and the step gives the same key and layer.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Iterator
from dataclasses import dataclass

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.engine.filesteps import FileSteps
from layerbuild.engine.layerwriter import LayerWriter, file_digests
from layerbuild.engine.ops.base import (
    Done,
    Prepared,
    Step,
    expanded,
    files_note,
    instruction_inputs,
    take_record,
)
from layerbuild.engine.runsteps import RunSteps
from layerbuild.engine.speedups.base import Speedups
from layerbuild.engine.state import StageState
from layerbuild.image.manifest import Layer
from layerbuild.plan.keys import CacheKey, Inputs
from layerbuild.store.cacheindex import CacheRecord


@contextlib.contextmanager
def _collections_paused() -> Iterator[None]:
    """No cyclic garbage collection while a COPY's Changes are built and digested. They, their
    lstats and the stat cache's rows are hundreds of thousands of objects made in one go and
    holding no cycles, so the collections their allocation triggers find nothing, and the full
    ones walk every object alive: at 100,000 files, 1.6 s of the 4.2 s a one-file-changed
    rebuild spent collecting. Collection resumes right after: anything cyclic made meanwhile
    is freed then."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(frozen=True)
class CopyPrepared(Prepared):
    """A COPY/ADD keyed: its sources and their digest."""

    source_key: str = ""  # where the sources come from (FileSteps.copy_changes)
    sources: str = ""  # the digest of the Changes (context/hashing.changes_digest)
    packed: Layer | None = None  # the layer, when it was packed while its digest was taken


@dataclass(frozen=True)
class CopyOp:
    """COPY and ADD: files into the stage as a layer."""

    dockerfile: Dockerfile
    files: FileSteps
    layers: LayerWriter
    runs: RunSteps
    speedups: Speedups

    def prepare(self, step: Step) -> CopyPrepared:
        state, instr = step.state, expanded(step, self.dockerfile)
        assert isinstance(instr, ins.Copy | ins.Add)
        fast = self.speedups
        quick = fast.quick_key(self.files, state, instr, step.source)
        inputs = list(instruction_inputs(instr))
        found = fast.quick_hit(state, quick, inputs) if quick is not None else None
        if found is not None:
            return CopyPrepared(instr, found=found)
        with _collections_paused():
            changes, source_key = self.files.copy_changes(state, instr, step.source, quick)
            ahead = functools.partial(
                fast.start_snapshot, state.name, step.index, changes, None, None
            )  # a context packed before its key: its snapshot is written meanwhile
            digest, files, packed = self.layers.sources_digest(
                changes, ahead if step.run_follows else None, speculate=fast.speculative_packing
            )
        if quick is not None:
            fast.remember(quick, digest)
        return CopyPrepared(instr, changes, files, None, source_key, str(digest), packed)

    @staticmethod
    def cache_inputs(state: StageState, prepared: CopyPrepared) -> Inputs:
        return (
            *instruction_inputs(prepared.instr),
            ("from", prepared.source_key),
            ("sources", prepared.sources),
        )

    def execute(self, step: Step, prepared: CopyPrepared, key: CacheKey) -> Done:
        state, changes, files = step.state, prepared.changes or [], prepared.files
        fast = self.speedups
        known = None  # the files' digests the key read: what the snapshot and pack check
        # the last build's layer of this step, whose unchanged entries the new one copies
        previous = fast.splice_from(state.name, step.index) if prepared.packed is None else None
        if changes and files is not None and prepared.packed is None:
            if step.run_follows or previous is not None:
                known = file_digests(changes, files)
            if step.run_follows:
                fast.start_snapshot(state.name, step.index, changes, files, known)
                snapshot = fast.pending_snapshot()  # the next RUN may run on it meanwhile
                fast.run_ahead(self.runs, state, step.next_instr, key.digest, changes, snapshot)
        # a snapshot of the layer is checked against the packed digests: a RUN may need one
        after, layer = self.layers.add_layer(
            state,
            prepared.instr,
            changes,
            prepared.packed,
            digests=step.run_follows,
            known=known,
            previous=previous,
            indexed=True,
        )
        if layer is not None and changes and files is not None:
            self.speedups.offer_snapshot(state.name, step.index, layer, changes, files)
        return Done(after, layer, files_note(prepared.changes), changes)

    def reuse(self, step: Step, prepared: CopyPrepared, record: CacheRecord) -> Done:
        self.speedups.drop_pending()  # the snapshot begun while it was hashed is not needed
        return take_record(step.state, record, prepared.changes)
