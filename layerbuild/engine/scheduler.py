"""Which stage runs when: a stage starts as soon as the stages it uses (its FROM stage, COPY
--from, RUN --mount from=) are done, up to `jobs` at once, each on a thread of its own (a RUN
step is a process; packing a layer releases the interpreter lock in zlib and zstd).

`Schedule` is the pure part: what may start, in the Dockerfile's order among the ready ones.
`run_stages` drives it. The first stage to fail stops the build: no stage starts after it,
`stop` kills the steps running in the others (sandbox/cancel.py), and once every thread has
returned its error is the one raised. A stage's steps write only complete, verified blobs and
records (store/), so a stage stopped half-way keeps nothing half-written; its snapshot and
scratch directories are removed as the step unwinds.

Determinism: a stage's result depends only on its inputs and on the results of the stages it
uses, never on which stage finished first; step ids (given as steps start) may interleave.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol, TypeVar

from layerbuild.engine.runsteps import RunSteps
from layerbuild.engine.state import StageState
from layerbuild.engine.stepcache import StepCache
from layerbuild.plan.graph import PlannedStage


class Task(Protocol):
    """What `run_stages` runs: a planned stage, or a platform's build (multiplatform.py)."""

    @property
    def index(self) -> int: ...

    @property
    def deps(self) -> Collection[int]: ...


T = TypeVar("T", bound=Task)


class Schedule:
    """The stages of a build (`order`: the Dockerfile's) and what each waits for."""

    def __init__(self, order: Sequence[int], deps: Mapping[int, Collection[int]]) -> None:
        self.order = tuple(order)
        known = set(self.order)
        # a dependency outside the build (a stage a named context replaces) is never waited for
        self.deps = {i: frozenset(d for d in deps.get(i, ()) if d in known) for i in self.order}
        self.started: set[int] = set()
        self.finished: set[int] = set()

    def ready(self) -> list[int]:
        """The stages that may start now, in the Dockerfile's order."""
        return [
            i for i in self.order if i not in self.started and self.deps[i] <= self.finished
        ]

    def start(self, index: int) -> None:
        self.started.add(index)

    def finish(self, index: int) -> None:
        self.finished.add(index)

    @property
    def complete(self) -> bool:
        return len(self.finished) == len(self.order)


def build_stages(
    stages: Sequence[PlannedStage],
    run: Callable[[PlannedStage], StageState],
    results: dict[int, StageState],
    runs: RunSteps,
    cache: StepCache,
) -> None:
    """The executor's stages (`run` builds one), up to `runs.options.jobs` at once, into
    `results`; a failure kills the RUN steps of the others (`runs.cancel`)."""
    from layerbuild.sandbox.cancel import Cancel

    # a platform run of a multi-platform build comes with the Cancel its build stops it by
    runs.cancel = cancel = runs.cancel or Cancel()

    def work(planned: PlannedStage) -> None:
        results[planned.index] = run(planned)

    run_stages(stages, work, runs.options.jobs, cancel.cancel)
    # the next build's miss reasons and the exported records, in the Dockerfile's order
    rank = {results[p.index].name: n for n, p in enumerate(stages)}
    cache.built.sort(key=lambda step: rank.get(step.stage, len(rank)))


def run_stages(
    stages: Sequence[T],
    work: Callable[[T], None],
    jobs: int,
    stop: Callable[[], None],
) -> None:
    """`work(stage)` for every stage, each once the stages it uses are done, `jobs` at once.
    The first failure (or a KeyboardInterrupt here) calls `stop` and is raised once all the
    threads have returned."""
    by_index = {s.index: s for s in stages}
    schedule = Schedule([s.index for s in stages], {s.index: s.deps for s in stages})
    ended: queue.Queue[tuple[int, BaseException | None]] = queue.Queue()

    def run(index: int) -> None:
        try:
            work(by_index[index])
        except BaseException as e:  # handed to the scheduling thread, which raises it
            ended.put((index, e))
        else:
            ended.put((index, None))

    threads: list[threading.Thread] = []
    running, failure = 0, None
    try:
        while True:
            for index in schedule.ready()[: max(jobs - running, 0)] if failure is None else ():
                schedule.start(index)
                running += 1
                thread = threading.Thread(target=run, args=(index,), name=f"stage-{index}")
                threads.append(thread)
                thread.start()
            if running == 0:
                break
            index, error = ended.get()
            running -= 1
            if error is None:
                schedule.finish(index)
            elif failure is None:
                failure = error
                stop()
    except BaseException:  # Ctrl-C: stop the others and wait for their threads to unwind
        stop()
        for thread in threads:
            thread.join()
        raise
    if failure is not None:
        raise failure
    assert schedule.complete, "a stage waits for one that never ran"
