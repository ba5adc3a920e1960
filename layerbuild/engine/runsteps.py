"""RUN steps for the RUN op (engine/ops/run.py): running them, or taking what the speed-ups
ran ahead for the step (engine/speedups/runahead.py).

`runstep.py` knows what a RUN means (argv, env, how it fails); this module holds what one
build shares between its RUN steps: the snapshots, the mount sources, and the way a step's
changes become a layer of its stage.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from layerbuild.context.ignore import IgnoreRules
from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.engine import runstep
from layerbuild.engine.events import BuildEvent, Log
from layerbuild.engine.filesteps import FileSteps
from layerbuild.engine.options import BuildOptions
from layerbuild.engine.sources import SourceResolver
from layerbuild.engine.speedups.base import Speedups
from layerbuild.engine.state import StageState
from layerbuild.engine.stepcache import StepCache
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.store.layers import LayerSnapshots
from layerbuild.store.layout import Store

if TYPE_CHECKING:
    from layerbuild.engine import runmounts, runmounts_prepare
    from layerbuild.sandbox.cancel import Cancel

# the stage with the step's Changes as its next layer (LayerWriter.add_layer)
AddLayer = Callable[
    [StageState, ins.Instruction, list[Change]], tuple[StageState, Layer | None]
]


@dataclass
class RunSteps:
    """Runs RUN steps in the sandbox and reads their changes back."""

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
    speedups: Speedups  # what may have run the step already (run-ahead)
    # kills the build's running steps when one of its stages failed (engine/scheduler.py)
    cancel: Cancel | None = None

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
        self,
        state: StageState,
        instr: ins.Run,
        mounts: tuple[runmounts.RunMount, ...],
        step_id: int,
        key: Digest,
    ) -> tuple[StageState, Layer | None, list[Change], str]:
        """Run the step (`mounts`: its --mount flags, expanded) or take what run-ahead ran for
        `key`, its key, and add its layer: the stage's next state, that layer, its Changes,
        and the note of its progress line (whether it ran ahead)."""
        result = self.speedups.take_ahead(self, state, key, step_id)
        note = "ran while the layer below was packed" if result is not None else ""
        if result is None:
            from layerbuild.engine import runmounts_prepare

            execute = self.executor(state, instr, mounts)
            inputs = self.mount_inputs()
            with runmounts_prepare.prepared(mounts, inputs) as made:
                result = execute(
                    log=lambda line: self.emit(Log(step_id, line)),
                    mounts=made,
                    secret_env=runmounts_prepare.secret_env(mounts, inputs.secrets),
                )
        try:
            after, layer = self.add_layer(state, instr, result.changes)
            if layer is not None:
                self.snaps.commit_upper(self.store, layer, result.step.upper)
        finally:
            self.snaps.discard(result.step)
        return after, layer, result.changes, note

    def executor(
        self, state: StageState, instr: ins.Run, mounts: tuple[runmounts.RunMount, ...]
    ) -> Callable[..., runstep.RunResult]:
        """`execute(log=..., **more)`: the RUN over the stage's layers as they are now, with
        everything it needs from `state` read here (run-ahead calls it on another thread).
        A stage of another architecture runs under QEMU: said here, before anything runs,
        when its binfmt_misc handler is missing."""
        from layerbuild.engine.platforms import host_platform
        from layerbuild.engine.runmounts_prepare import ssh_env
        from layerbuild.sandbox.binfmt import require_emulation

        require_emulation(state.meta.config.architecture, host_platform().architecture)
        ids = self.files.user_ids(state)
        step_env = dict(state.scope.run_env())
        step_env.update(ssh_env(mounts, step_env))  # not in the key, as in BuildKit
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
            snapshotter=self.options.snapshotter,
            cancel=self.cancel,
        )

    def _execute(self, layers: list[Layer], instr: ins.Run, **more: Any) -> runstep.RunResult:
        """`runstep.execute_run` over `layers`, those of this build's COPY layers that need a
        snapshot written first (the store unpacks only the others)."""
        self.speedups.write_snapshots(layers)
        return runstep.execute_run(self.store, self.snaps, layers, instr, **more)
