"""engine/multiplatform.py: how --jobs is split between platforms, and how the runs' events
become one build's."""

from __future__ import annotations

import pytest

from layerbuild.digest import sha256_bytes
from layerbuild.engine.events import BuildDone, BuildEvent, CheckWarned, Log, StepDone, StepStarted
from layerbuild.engine.multiplatform import _Relay, _Shared, split_jobs
from layerbuild.image.descriptor import Platform

AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")


@pytest.mark.parametrize(
    ("jobs", "platforms", "split"),
    [
        (1, 2, (1, 1)),
        (2, 2, (2, 1)),
        (3, 2, (2, 1)),
        (4, 2, (2, 2)),
        (2, 3, (2, 1)),
        (8, 1, (1, 8)),
    ],
)
def test_jobs_are_split_without_running_more_stages_than_jobs(
    jobs: int, platforms: int, split: tuple[int, int]
) -> None:
    assert split_jobs(jobs, platforms) == split
    at_once, each = split
    assert at_once * each <= max(jobs, 1)


def _started(step_id: int) -> StepStarted:
    return StepStarted(step_id, "build", step_id, 2, step_id, "RUN x")


def test_runs_at_once_take_step_ids_from_one_counter() -> None:
    events: list[BuildEvent] = []
    shared = _Shared(events.append)
    amd, arm = _Relay(shared, AMD64, first=True), _Relay(shared, ARM64, first=False)
    amd(_started(1))
    arm(_started(1))
    arm(Log(1, "arm line"))
    amd(_started(2))
    arm(StepDone(1, 0.1))
    amd(StepDone(1, 0.1))
    ids = [(type(e).__name__, getattr(e, "step_id", None)) for e in events]
    assert ids == [
        ("StepStarted", 1), ("StepStarted", 2), ("Log", 2), ("StepStarted", 3),
        ("StepDone", 2), ("StepDone", 1),
    ]
    assert [e.stage for e in events if isinstance(e, StepStarted)] == [
        "linux/amd64 build", "linux/arm64 build", "linux/amd64 build",
    ]


def test_runs_one_after_another_number_as_one_build() -> None:
    events: list[BuildEvent] = []
    shared = _Shared(events.append)
    for n, platform in enumerate((AMD64, ARM64)):
        relay = _Relay(shared, platform, first=n == 0)
        for step_id in (1, 2):
            relay(_started(step_id))
            relay(StepDone(step_id, 0.1))
    assert [e.step_id for e in events if isinstance(e, StepStarted)] == [1, 2, 3, 4]


def test_checks_are_reported_once_and_a_run_ends_in_a_log_line() -> None:
    events: list[BuildEvent] = []
    shared = _Shared(events.append)
    amd, arm = _Relay(shared, AMD64, first=True), _Relay(shared, ARM64, first=False)
    check = CheckWarned("JSONArgsRecommended", "use JSON", 3, "https://example.invalid/")
    amd(check)
    arm(check)
    digest = sha256_bytes(b"image")
    arm(BuildDone(digest, (), 1.0))
    assert events == [check, Log(None, f"linux/arm64: image {digest}")]
