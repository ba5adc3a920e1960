"""The contract of one op kind (BuildKit's ops: a CacheMap and an Exec).

A step goes through its op in three parts, so that what keys it is apart from what runs it:

- `prepare(step)` does the reading a key needs and nothing the cache could spare: it expands
  the instruction against the stage's variables (declaring ARGs and ENVs in the scope), for
  COPY/ADD it selects and hashes the sources (the Changes are built then, as their content is
  the key), for RUN it reads its --mount sources. A COPY may find its cache record here
  already (its quick key: `Prepared.found`).
- `cache_inputs(state, prepared)` is pure: the named key inputs of the step, from what
  `prepare` read and the stage as it is (stepcache.chain adds the parent key).
- `execute(step, prepared, key)` runs the step on a miss and returns the stage's next state
  (engine/state.py: its config and layers as the step leaves them) in `Done`;
  `reuse(step, prepared, record)` makes that state from a cache record instead on a hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from layerbuild.dockerfile import instructions as ins
from layerbuild.dockerfile.expand import expand
from layerbuild.dockerfile.parser import Dockerfile
from layerbuild.engine import meta as m
from layerbuild.engine.state import StageState
from layerbuild.image.changes import Change, ChangeKind
from layerbuild.image.manifest import Layer
from layerbuild.plan.graph import ImageBase, StageBase
from layerbuild.plan.keys import CacheKey, Inputs
from layerbuild.store.cacheindex import CacheRecord


@dataclass(frozen=True)
class Step:
    """One step of a stage, as the executor hands it to its op."""

    state: StageState
    instr: ins.Instruction  # as written in the Dockerfile (or the base's ONBUILD trigger)
    source: StageBase | ImageBase | None  # where a COPY --from reads
    index: int  # the step's position in its stage (FROM is 1): what the previous build names
    step_id: int  # its id in the build's events
    run_follows: bool  # whether a RUN comes after it in its stage
    next_instr: ins.Instruction | None  # the step after it in its stage


@dataclass(frozen=True)
class Prepared:
    """What `prepare` read for a step: what keys it, and what its op runs on a miss."""

    instr: ins.Instruction  # expanded (ARG and RUN as written: their own rules expand them)
    changes: list[Change] | None = None  # the files it writes, known before it runs
    files: dict[str, str] | None = None  # per-file summaries its key read, for miss reasons
    found: tuple[CacheKey, CacheRecord] | None = None  # a hit found while preparing


@dataclass(frozen=True)
class Done:
    """What a step gave: the stage's next state, its layer (None: config only), the note of
    its progress line, and the Changes of that layer when known (the stage's file tree takes
    them in: engine/stagetrees.py; None: it is loaded again when next needed)."""

    state: StageState
    layer: Layer | None
    note: str = ""
    changes: list[Change] | None = None


P = TypeVar("P", bound=Prepared)


class Op(Protocol[P]):
    """One op kind: engine/ops/{meta,workdir,copy,run}.py."""

    def prepare(self, step: Step) -> P: ...

    def cache_inputs(self, state: StageState, prepared: P) -> Inputs:
        """Pure: the step's key inputs."""
        ...

    def execute(self, step: Step, prepared: P, key: CacheKey) -> Done: ...

    def reuse(self, step: Step, prepared: P, record: CacheRecord) -> Done: ...


def expanded(step: Step, dockerfile: Dockerfile) -> ins.Instruction:
    """The step's instruction with the stage's variables substituted."""
    return expand(
        step.instr,
        step.state.scope.expansion_env(),
        escape=dockerfile.escape,
        source=dockerfile.source,
    )


def instruction_inputs(instr: ins.Instruction) -> Inputs:
    """The key inputs of a step keyed by its text alone."""
    return (("instruction", ins.describe(instr)),)


def take_record(
    state: StageState, record: CacheRecord, changes: list[Change] | None, *, cmd: bool = False
) -> Done:
    """A hit: the stage takes the record's config and layer (`cmd`: the step is a CMD, which
    an ENTRYPOINT after it keeps); `changes`: the layer's, when the step built them."""
    meta = m.StageMeta(record.config, cmd_set=state.meta.cmd_set or cmd)
    note = files_note(changes)
    if record.layer is None:
        return Done(state.with_meta(meta), None, note)
    return Done(state.with_layer(record.layer, meta), record.layer, note, changes)


def files_note(changes: list[Change] | None) -> str:
    if changes is None:
        return ""
    return f"{sum(1 for c in changes if c.kind is ChangeKind.FILE)} files"
