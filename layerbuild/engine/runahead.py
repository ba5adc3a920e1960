"""RunAhead: the RUN that follows a missed COPY, run while that COPY's layer is packed.

Packing a big COPY layer is mostly the tar writer's Python on one core; the RUN after it is
mostly its command's own processes. Its key is known as soon as the COPY's is (the COPY's is
its parent), and its lower directories are the stage's plus the COPY's snapshot, which a child
process writes from the COPY's Changes (engine/copykeys.py). So the RUN is started on a thread
as soon as that snapshot is written, and the pack goes on meanwhile.

Its result is used only when the RUN step then asks for that very key and the snapshot it ran
on is the one adopted as the packed layer's (adoption checks its file digests against the
packed ones). Otherwise it is thrown away and the RUN runs again, as without run-ahead. Its
output lines are held back until the RUN step starts, and a failure is raised there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from layerbuild.digest import Digest
from layerbuild.engine.runstep import RunResult
from layerbuild.store.layers import LayerSnapshots


class RunAhead:
    def __init__(
        self,
        key: Digest,
        ready: Callable[[], bool],
        execute: Callable[..., RunResult],
        snaps: LayerSnapshots,
    ) -> None:
        """Start `execute(log=...)` on a thread once `ready()` (the snapshot below it was
        written) says so; `key` is the RUN step's."""
        self.key = key
        self._snaps = snaps
        self._logs: list[str] = []
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(ready, execute), name="run-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, ready: Callable[[], bool], execute: Callable[..., RunResult]) -> None:
        try:
            if ready():
                self._result = execute(log=self._logs.append)
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
