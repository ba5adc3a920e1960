"""RUN steps for the executor: their cache inputs (mounts included) and running them.

`runstep.py` knows what a RUN means (argv, env, how it fails); this module holds what one
build shares between its RUN steps: the snapshots, the mount sources, and the way a step's
changes become a layer of its stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from layerbuild.build import runmounts, runstep
from layerbuild.build.events import BuildEvent, Log
from layerbuild.build.filesteps import FileSteps, StageState
from layerbuild.build.options import BuildOptions
from layerbuild.build.sources import SourceResolver
from layerbuild.context.ignore import IgnoreRules
from layerbuild.dockerfile import instructions as ins
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.store.layers import LayerSnapshots
from layerbuild.store.layout import Store

if TYPE_CHECKING:
    from layerbuild.build import runmounts_prepare

AddLayer = Callable[[StageState, ins.Instruction, list[Change]], Layer | None]


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
    mounts: tuple[runmounts.RunMount, ...] = field(default=())

    def network(self, instr: ins.Run) -> str:
        return instr.network if instr.network not in (None, "default") else self.options.network

    def inputs(self, state: StageState, instr: ins.Run) -> list[tuple[str, str]]:
        user = state.meta.config.config.user
        # --mount flags are expanded like BuildKit's; kept for _run, which follows on a miss
        self.mounts = runmounts.parse_mounts(
            instr,
            state.meta.workdir,
            state.scope.expansion_env(),
            file=self.source_name,
        )
        mounts = ""
        if self.mounts:
            from layerbuild.build import runmounts_prepare  # for --mount flags only

            mounts = runmounts_prepare.mounts_key(self.mounts, self.mount_inputs())
        return runstep.cache_inputs(
            instr,
            state.scope.run_env(),
            state.meta.shell,
            user,
            state.meta.workdir,
            self.network(instr),
            mounts=mounts,
        )

    def mount_inputs(self) -> runmounts_prepare.MountInputs:
        from layerbuild.build import runmounts_prepare

        return runmounts_prepare.MountInputs(
            self.store,
            self.options.context,
            self.ignore,
            self.options.secrets,
            runmounts_prepare.MountFrom(self.results, self.sources),
            self.files.scratch,
        )

    def run(self, state: StageState, instr: ins.Run, step_id: int) -> Layer | None:
        ids = self.files.user_ids(state)
        env = runstep.run_env(state.scope.run_env(), self.files.home(state, ids[0]))
        argv, stdin = runstep.run_command(instr, state.meta.shell)
        from layerbuild.build import runmounts_prepare

        with runmounts_prepare.prepared(self.mounts, self.mount_inputs()) as mounts:
            result = runstep.execute_run(
                self.store,
                self.snaps,
                state.layers,
                instr,
                argv=argv,
                stdin=stdin,
                env=env,
                cwd=state.meta.workdir,
                ids=ids,
                network=self.network(instr),
                log=lambda line: self.emit(Log(step_id, line)),
                mounts=mounts,
            )
        try:
            layer = self.add_layer(state, instr, result.changes)
            if layer is not None:
                self.snaps.commit_upper(self.store, layer, result.step.upper)
        finally:
            self.snaps.discard(result.step)
        return layer
