"""The RUN op: keyed as BuildKit's ExecOp.CacheMap is (command, environment, user, workdir,
network, what its --mount flags show, the build's --add-host/--shm-size/--ulimit), run in the
sandbox on a miss (engine/runsteps.py: snapshots, mounts, what ran ahead; engine/runstep.py: what
a RUN means)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from layerbuild.dockerfile import instructions as ins
from layerbuild.engine import runstep
from layerbuild.engine.ops.base import Done, Prepared, Step, take_record
from layerbuild.engine.runsteps import RunSteps
from layerbuild.engine.state import StageState
from layerbuild.plan.keys import CacheKey, Inputs
from layerbuild.store.cacheindex import CacheRecord

if TYPE_CHECKING:
    from layerbuild.engine import runmounts
    from layerbuild.sandbox.limits import Ulimit
    from layerbuild.sandbox.netfiles import HostEntry


@dataclass(frozen=True)
class RunPrepared(Prepared):
    """A RUN keyed: its mounts, network and hosts, as the key saw them."""

    mounts: tuple[runmounts.RunMount, ...] = ()  # its --mount flags, expanded as BuildKit does
    mounts_key: str = ""  # runmounts_prepare.mounts_key ("" without --mount)
    network: str = "default"  # RUN --network, else the build's
    hosts: tuple[HostEntry, ...] = ()  # the build's --add-host
    shm_size: int | None = None
    ulimits: tuple[Ulimit, ...] = ()


def prepare_run(runs: RunSteps, state: StageState, instr: ins.Run) -> RunPrepared:
    """A RUN (as written: its shell expands it) and what its mounts show."""
    mounts: tuple[runmounts.RunMount, ...] = ()
    mounts_key = ""
    if instr.mounts:  # the mount modules are imported for --mount flags only
        from layerbuild.engine import runmounts, runmounts_prepare

        env = state.scope.expansion_env()
        mounts = runmounts.parse_mounts(instr, state.meta.workdir, env, file=runs.source_name)
        mounts_key = runmounts_prepare.mounts_key(mounts, runs.mount_inputs())
    options = runs.options
    return RunPrepared(
        instr,
        mounts=mounts,
        mounts_key=mounts_key,
        network=runs.network(instr),
        hosts=options.add_hosts,
        shm_size=options.shm_size,
        ulimits=options.ulimits,
    )


def run_inputs(state: StageState, prepared: RunPrepared) -> Inputs:
    """Pure: the key inputs of a prepared RUN on `state`."""
    assert isinstance(prepared.instr, ins.Run)
    return tuple(
        runstep.cache_inputs(
            prepared.instr,
            state.scope.keyed_env(),
            state.meta.shell,
            state.meta.config.config.user,
            state.meta.workdir,
            prepared.network,
            mounts=prepared.mounts_key,
            hosts=prepared.hosts,
            shm_size=prepared.shm_size,
            ulimits=prepared.ulimits,
        )
    )


@dataclass(frozen=True)
class RunOp:
    """RUN: a command in the sandbox, its changes kept as a layer."""

    runs: RunSteps

    def prepare(self, step: Step) -> RunPrepared:
        assert isinstance(step.instr, ins.Run)
        return prepare_run(self.runs, step.state, step.instr)

    @staticmethod
    def cache_inputs(state: StageState, prepared: RunPrepared) -> Inputs:
        return run_inputs(state, prepared)

    def execute(self, step: Step, prepared: RunPrepared, key: CacheKey) -> Done:
        instr, runs = prepared.instr, self.runs
        assert isinstance(instr, ins.Run)
        state, layer, changes, note = runs.run(
            step.state, instr, prepared.mounts, step.step_id, key.digest
        )
        return Done(state, layer, note, changes)

    def reuse(self, step: Step, prepared: RunPrepared, record: CacheRecord) -> Done:
        return take_record(step.state, record, None)
