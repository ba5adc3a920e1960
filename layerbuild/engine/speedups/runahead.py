"""RunAhead: the RUN that follows a missed COPY, run while that COPY's layer is packed.

Packing a big COPY layer is mostly the tar writer's Python on one core; the RUN after it is
mostly its command's own processes. Its key is known as soon as the COPY's is (the COPY's is
its parent), and its lower directories are the stage's plus the COPY's snapshot, which a child
process writes from the COPY's Changes (speedups/copykeys.py). So the RUN is started on a thread
as soon as that snapshot is written, and the pack goes on meanwhile.

Its result is used only when the RUN step then asks for that very key and the snapshot it ran
on is the one adopted as the packed layer's (adoption checks its file digests against the
packed ones). Otherwise it is thrown away and the RUN runs again, as without run-ahead. Its
output lines are held back until the RUN step starts, and a failure is raised there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from layerbuild.digest import Digest
from layerbuild.dockerfile import instructions as ins
from layerbuild.engine.events import Log
from layerbuild.engine.filesteps import touches
from layerbuild.engine.ops.run import prepare_run, run_inputs
from layerbuild.engine.runstep import RunResult
from layerbuild.engine.state import StageState
from layerbuild.engine.stepcache import chain
from layerbuild.image.changes import Change
from layerbuild.store.layers import LayerSnapshots

if TYPE_CHECKING:
    from layerbuild.engine.runsteps import RunSteps
    from layerbuild.engine.speedups.copykeys import CopyKeys


class RunAhead:
    def __init__(
        self,
        key: Digest,
        ready: Callable[[], tuple[Path, ...] | None],
        execute: Callable[..., RunResult],
        snaps: LayerSnapshots,
    ) -> None:
        """Start `execute(log=..., top=...)` on a thread once `ready()` gives the directories
        of the snapshot below it (top: those, None: it could not be written); `key` is the
        RUN step's."""
        self.key = key
        self._snaps = snaps
        self._logs: list[str] = []
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(ready, execute), name="run-ahead", daemon=True
        )
        self._thread.start()

    def _run(
        self, ready: Callable[[], tuple[Path, ...] | None], execute: Callable[..., RunResult]
    ) -> None:
        try:
            top = ready()
            if top is not None:
                self._result = execute(log=self._logs.append, top=top)
        except BaseException as e:  # raised in the RUN step, if the run is valid
            self._error = e

    def take(self, valid: Callable[[], bool]) -> tuple[RunResult | None, list[str]]:
        """(the result, the output lines) once the run is over, if `valid()`; raises what
        the run raised. (None, []) when there is nothing to use: run the step itself."""
        self._thread.join()
        if self._result is None and self._error is None:
            return None, []
        if not valid():
            self.drop()
            return None, []
        if self._error is not None:
            raise self._error
        return self._result, self._logs

    def drop(self) -> None:
        """Throw the run away. Does not wait for one still running (a build that failed
        meanwhile): its sandbox dies with this process, its step directory with the next
        build's cleanup of dead processes' leftovers."""
        if self._thread.is_alive():
            return
        if self._result is not None:
            self._snaps.discard(self._result.step)
            self._result = None


class RunAheads:
    """The one run-ahead of a build at a time: started by a missed COPY, taken (or thrown
    away) by the RUN step after it. `copies` (speedups/copykeys.py) writes the snapshots of
    this build's COPY layers and says whether a layer's is the one written ahead, which is
    what the run ran on."""

    def __init__(self, copies: CopyKeys) -> None:
        self._copies = copies
        # thread id -> its run-ahead: "one at a time" is per stage, each on its own thread
        # (engine/scheduler.py)
        self._aheads: dict[int, RunAhead] = {}

    @property
    def _ahead(self) -> RunAhead | None:
        return self._aheads.get(threading.get_ident())

    @_ahead.setter
    def _ahead(self, ahead: RunAhead | None) -> None:
        if ahead is None:
            self._aheads.pop(threading.get_ident(), None)
        else:
            self._aheads[threading.get_ident()] = ahead

    def start(
        self,
        runs: RunSteps,
        state: StageState,
        instr: ins.Instruction | None,
        key: Digest,
        changes: list[Change],
        snapshot: Callable[[], tuple[Path, ...] | None] | None,
    ) -> None:
        """Start the RUN `instr` that follows a missed COPY (`key`: the COPY step's, its
        parent) over the COPY's `snapshot` (a call that waits for its directories) while
        the COPY's layer is packed. Only a plain RUN (no --mount) whose key is not cached,
        after a COPY that leaves /etc alone (HOME comes from /etc/passwd)."""
        self.drop()
        if not isinstance(instr, ins.Run) or instr.mounts or snapshot is None:
            return
        if touches(changes, "etc"):
            return
        prepared = prepare_run(runs, state, instr)
        run_key = chain(key, run_inputs(state, prepared))
        if runs.cache.known(run_key):
            return
        execute = runs.executor(state, instr, prepared.mounts)
        self._ahead = RunAhead(run_key.digest, snapshot, execute, runs.snaps)

    def take(
        self, runs: RunSteps, state: StageState, key: Digest, step_id: int
    ) -> RunResult | None:
        """The run-ahead's result for this step, if it ran this very step on the snapshot
        adopted for the layer below it."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or ahead.key != key or not state.layers:
            if ahead is not None:
                ahead.drop()
            return None
        below = state.layers[-1]

        def valid() -> bool:
            self._copies.write_snapshots([below])  # adopts the snapshot it ran on, if it was
            return self._copies.adopted(below)

        result, lines = ahead.take(valid)
        for line in lines:
            runs.emit(Log(step_id, line))
        return result

    def drop(self) -> None:
        if self._ahead is not None:
            self._ahead.drop()
            self._ahead = None

    def close(self) -> None:
        """Drop every stage's run-ahead (the build ends)."""
        for ahead in self._aheads.values():
            ahead.drop()
        self._aheads.clear()
