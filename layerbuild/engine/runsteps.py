"""RUN steps for the RUN op (engine/ops/run.py): running them, and starting the RUN that
follows a missed COPY while that COPY's layer is packed.

`runstep.py` knows what a RUN means (argv, env, how it fails); this module holds what one
build shares between its RUN steps: the snapshots, the mount sources, and the way a step's
changes become a layer of its stage.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from layerbuild.context.ignore import IgnoreRules
from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.engine import runmounts, runstep
from layerbuild.engine.events import BuildEvent, Log
from layerbuild.engine.filesteps import FileSteps, StageState, touches
from layerbuild.engine.ops.run import RunPrepared, prepare_run, run_inputs
from layerbuild.engine.options import BuildOptions
from layerbuild.engine.runahead import RunAhead
from layerbuild.engine.sources import SourceResolver
from layerbuild.engine.stepcache import StepCache, chain
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.store.layers import LayerSnapshots
from layerbuild.store.layout import Store

if TYPE_CHECKING:
    from layerbuild.engine import runmounts_prepare

RUN_AHEAD_ENV = "LAYERBUILD_RUN_AHEAD"  # "0": a RUN never starts before its step (runahead.py)
AddLayer = Callable[[StageState, ins.Instruction, list[Change]], Layer | None]


class WrittenSnapshots(Protocol):
    """The snapshots of this build's COPY layers, written from their Changes rather than
    unpacked by the store (engine/copykeys.CopyKeys)."""

    def write_snapshots(self, layers: Sequence[Layer]) -> None: ...

    def adopted(self, layer: Layer) -> bool: ...


@dataclass
class RunSteps:
    store: Store
    snaps: LayerSnapshots
    options: BuildOptions
    files: FileSteps
    sources: SourceResolver
    ignore: IgnoreRules | None
    results: dict[int, StageState]
    source_name: str  # the Dockerfile's name, for errors in --mount flags
    emit: Callable[[BuildEvent], None]
    add_layer: AddLayer
    cache: StepCache
    written: WrittenSnapshots
    ahead: RunAhead | None = None
    note: str = ""  # for the progress line of the last RUN: whether it ran ahead

    def network(self, instr: ins.Run) -> str:
        return instr.network if instr.network not in (None, "default") else self.options.network

    def mount_inputs(self) -> runmounts_prepare.MountInputs:
        from layerbuild.engine import runmounts_prepare

        return runmounts_prepare.MountInputs(
            self.store,
            self.options.context,
            self.ignore,
            self.options.secrets,
            runmounts_prepare.MountFrom(self.results, self.sources),
            self.files.scratch,
            self.options.ssh,
        )

    def run(
        self, state: StageState, prepared: RunPrepared, step_id: int, key: Digest
    ) -> Layer | None:
        """Run the step (or take what run-ahead ran for `key`, its key) and add its layer."""
        instr = prepared.instr
        assert isinstance(instr, ins.Run)
        result = self._take_ahead(state, key, step_id)
        self.note = "ran while the layer below was packed" if result is not None else ""
        if result is None:
            from layerbuild.engine import runmounts_prepare

            execute = self._executor(state, instr, prepared.mounts)
            inputs = self.mount_inputs()
            with runmounts_prepare.prepared(prepared.mounts, inputs) as mounts:
                result = execute(
                    log=lambda line: self.emit(Log(step_id, line)),
                    mounts=mounts,
                    secret_env=runmounts_prepare.secret_env(prepared.mounts, inputs.secrets),
                )
        try:
            layer = self.add_layer(state, instr, result.changes)
            if layer is not None:
                self.snaps.commit_upper(self.store, layer, result.step.upper)
        finally:
            self.snaps.discard(result.step)
        return layer

    def _executor(
        self, state: StageState, instr: ins.Run, mounts: tuple[runmounts.RunMount, ...]
    ) -> Callable[..., runstep.RunResult]:
        """`execute(log=..., **more)`: the RUN over the stage's layers as they are now, with
        everything it needs from `state` read here (run-ahead calls it on another thread)."""
        ids = self.files.user_ids(state)
        step_env = dict(state.scope.run_env())
        step_env.update(runmounts.ssh_env(mounts, step_env))  # not in the key, as in BuildKit
        env = runstep.run_env(step_env, self.files.home(state, ids[0]))
        argv, stdin = runstep.run_command(instr, state.meta.shell)
        layers = list(state.layers)
        return functools.partial(
            self._execute,
            layers,
            instr,
            argv=argv,
            stdin=stdin,
            env=env,
            cwd=state.meta.workdir,
            ids=ids,
            network=self.network(instr),
            add_hosts=self.options.add_hosts,
            shm_size=self.options.shm_size,
            ulimits=self.options.ulimits,
        )

    def _execute(
        self, layers: list[Layer], instr: ins.Run, **more: Any
    ) -> runstep.RunResult:
        """`runstep.execute_run` over `layers`, those of this build's COPY layers that need a
        snapshot written first (the store unpacks only the others)."""
        self.written.write_snapshots(layers)
        return runstep.execute_run(self.store, self.snaps, layers, instr, **more)

    def run_ahead(
        self,
        state: StageState,
        instr: ins.Instruction | None,
        key: Digest,
        changes: list[Change],
        snapshot: tuple[Path, Callable[[], bool]] | None,
    ) -> None:
        """Start the RUN `instr` that follows a missed COPY (`key`: the COPY step's, its
        parent) over the COPY's `snapshot` (its directory, and whether it was written) while
        the COPY's layer is packed (engine/runahead.py). Only a plain RUN (no --mount) whose
        key is not cached, after a COPY that leaves /etc alone (HOME comes from
        /etc/passwd)."""
        self.drop_ahead()
        if not isinstance(instr, ins.Run) or instr.mounts or snapshot is None:
            return
        if os.environ.get(RUN_AHEAD_ENV) == "0":
            return
        if touches(changes, "etc"):
            return
        prepared = prepare_run(self, state, instr)
        run_key = chain(key, run_inputs(state, prepared))
        if self.cache.known(run_key):
            return
        top, ready = snapshot
        execute = functools.partial(self._executor(state, instr, prepared.mounts), top=top)
        self.ahead = RunAhead(run_key.digest, ready, execute, self.snaps)

    def _take_ahead(
        self, state: StageState, key: Digest, step_id: int
    ) -> runstep.RunResult | None:
        """The run-ahead's result for this step, if it ran this very step on the snapshot
        adopted for the layer below it."""
        ahead, self.ahead = self.ahead, None
        if ahead is None or ahead.key != key or not state.layers:
            if ahead is not None:
                ahead.drop()
            return None
        below = state.layers[-1]

        def valid() -> bool:
            self.written.write_snapshots([below])  # adopts the snapshot it ran on, if it was
            return self.written.adopted(below)

        result, lines = ahead.take(valid)
        for line in lines:
            self.emit(Log(step_id, line))
        return result

    def drop_ahead(self) -> None:
        if self.ahead is not None:
            self.ahead.drop()
            self.ahead = None
