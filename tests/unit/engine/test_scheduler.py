"""engine/scheduler.py: which stage may start when, and how the first failure stops the rest."""

from __future__ import annotations

import threading
import time

import pytest

from layerbuild.engine.scheduler import Schedule, run_stages
from layerbuild.plan.graph import PlannedStage


def test_ready_follows_dependencies_in_dockerfile_order() -> None:
    s = Schedule([0, 1, 2, 3], {2: {0, 1}, 3: {2}})
    assert s.ready() == [0, 1]
    s.start(0)
    s.start(1)
    assert s.ready() == []
    s.finish(1)
    assert s.ready() == []  # 2 still waits for 0
    s.finish(0)
    assert s.ready() == [2]
    s.start(2)
    s.finish(2)
    assert s.ready() == [3]
    s.start(3)
    s.finish(3)
    assert s.complete


def test_dependencies_outside_the_build_are_not_waited_for() -> None:
    """A stage a named context replaces is not built: what uses it starts at once."""
    assert Schedule([1, 2], {2: {0, 1}}).ready() == [1]
    assert Schedule([2], {2: {0, 1}}).ready() == [2]


class _Stage:
    """The two fields run_stages reads of a PlannedStage."""

    def __init__(self, index: int, deps: set[int]) -> None:
        self.index, self.deps = index, frozenset(deps)


def _stages(*pairs: tuple[int, set[int]]) -> list[PlannedStage]:
    return [_Stage(i, d) for i, d in pairs]  # type: ignore[misc]


def test_independent_stages_overlap_up_to_jobs() -> None:
    lock, running, peak, order = threading.Lock(), [0], [0], []

    def work(stage: PlannedStage) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
            order.append(stage.index)

    stages = _stages((0, set()), (1, set()), (2, set()), (3, {0, 1, 2}))
    run_stages(stages, work, 2, lambda: None)
    assert peak[0] == 2
    assert order[-1] == 3 and sorted(order) == [0, 1, 2, 3]


def test_the_first_failure_stops_the_others_and_is_raised() -> None:
    stopped = threading.Event()
    started = []

    def work(stage: PlannedStage) -> None:
        started.append(stage.index)
        if stage.index == 0:
            raise ValueError("first")
        assert stopped.wait(5), "stop was not called"
        raise RuntimeError("killed")  # what a stopped stage raises: not the one reported

    stages = _stages((0, set()), (1, set()), (2, {1}))
    with pytest.raises(ValueError, match="first"):
        run_stages(stages, work, 2, stopped.set)
    assert sorted(started) == [0, 1]  # stage 2 never starts


def test_one_job_runs_in_dockerfile_order_on_one_thread_at_a_time() -> None:
    order: list[int] = []
    stages = _stages((0, set()), (1, set()), (2, {0}))
    run_stages(stages, lambda s: order.append(s.index), 1, lambda: None)
    assert order == [0, 1, 2]
