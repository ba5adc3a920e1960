"""Independent stages run at once (--jobs, engine/scheduler.py): faster, stopped together when
one fails, and the image is the same whichever stage finished first."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context, stray_files
from tests.support.parallel import sleeps, timed_build

pytestmark = [pytest.mark.root, pytest.mark.overlay]

TWO_SLEEPS = """\
FROM busybox AS a
RUN sleep 2 && echo a > /a
FROM busybox AS b
RUN sleep 2 && echo b > /b
FROM busybox
COPY --from=a /a /out/a
COPY --from=b /b /out/b
"""

ONE_FAILS = """\
FROM busybox AS a
RUN sleep 1; exit 3
FROM busybox AS b
RUN sleep 30 && echo b > /b
FROM busybox
COPY --from=a /etc/hostname /out/a
COPY --from=b /b /out/b
"""

SEVERAL = """\
FROM busybox AS base
RUN echo base > /base
FROM base AS left
RUN echo left > /left && sleep 0.3
COPY --from=base /base /copied
FROM busybox AS right
RUN echo right > /right
FROM scratch AS files
COPY --from=right /right /right
FROM left
RUN --mount=type=bind,from=files,target=/m cat /m/right > /from-mount
COPY --from=right /right /right
"""


def test_independent_stages_run_at_once(lb: Layerbuild, tmp_path: Path) -> None:
    """Two stages that each sleep 2 s: under 3 s with --jobs 2, 4 s or more with --jobs 1."""
    ctx = make_context(tmp_path, {"Dockerfile": TWO_SLEEPS})
    lb.build(ctx, "--jobs", "1")  # the base's layer snapshots, unpacked once for both
    parallel = timed_build(lb, ctx, "--jobs", "2")
    serial = timed_build(lb, ctx, "--jobs", "1")
    assert serial >= 4.0
    figures = f"--jobs 2 took {parallel:.1f}s (--jobs 1: {serial:.1f}s)"
    assert parallel < 3.0 and parallel < serial - 1.5, figures


def test_a_failing_stage_stops_the_others(lb: Layerbuild, tmp_path: Path) -> None:
    """The first failure (exit 3) ends the build at once: the other stage's `sleep 30` is
    killed and reaped, nothing stays mounted, nothing half-written stays in the store."""
    ctx = make_context(tmp_path, {"Dockerfile": ONE_FAILS})
    before = sleeps("30")
    t0 = time.monotonic()
    proc = lb("build", "--progress", "plain", "--jobs", "2", ctx)
    seconds = time.monotonic() - t0
    assert proc.returncode == 4, proc.stderr
    assert seconds < 10, f"the build took {seconds:.1f}s to stop"
    error = proc.stderr.strip().splitlines()[-1]
    assert "3" in error and "sleep 1; exit 3" in proc.stderr, proc.stderr
    assert "sleep 30" not in error
    assert sleeps("30") - before == set()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(lb.store) not in mounts
    assert stray_files(lb.store) == []
    assert list((lb.store / "snapshots" / "layers").glob("tmp-*")) == []


def test_digest_does_not_depend_on_the_order_stages_end(lb: Layerbuild, tmp_path: Path) -> None:
    """FROM a stage, COPY --from, RUN --mount from= across stages: the same image with
    --jobs 1 and --jobs 2, built again from nothing."""
    ctx = make_context(tmp_path, {"Dockerfile": SEVERAL})
    digests = set()
    epoch = ("--build-arg", "SOURCE_DATE_EPOCH=0")
    for jobs in ("1", "2", "2", "1"):
        iid = tmp_path / f"iid-{len(digests)}"
        lb.build(ctx, "--no-cache", *epoch, "--jobs", jobs, "--iidfile", iid)
        digests.add(iid.read_text())
    assert len(digests) == 1
    plain = lb.build(ctx, *epoch, "--jobs", "2", "--iidfile", tmp_path / "iid").stderr
    assert " DONE " not in plain and "ERROR" not in plain
    assert (tmp_path / "iid").read_text() in digests
