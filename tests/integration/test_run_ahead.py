"""Run-ahead (speedups/runahead.py): the RUN after a missed COPY runs while that COPY's layer is
packed. It must build the image a plain run builds, show its output under its own step, and
fail where a plain run fails, with the COPY before it recorded."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

AHEAD = "ran while the layer below was packed"
DOCKERFILE = """\
FROM busybox
COPY src/ /app/
RUN echo "seen $(cat /app/a.txt)" && cat /app/a.txt > /copy && ls /app/many | wc -l > /count
RUN echo second > /second
"""
EPOCH = ("--build-arg", "SOURCE_DATE_EPOCH=1700000000")


def _context(tmp_path: Path) -> Path:
    files = {f"src/many/f{i:04d}": f"{i}\n" for i in range(600)}
    return make_context(tmp_path, {"Dockerfile": DOCKERFILE, "src/a.txt": "one\n", **files})


def _done_line(stderr: str, index: int) -> str:
    """The DONE/CACHED line of the step shown as [stage index/total]."""
    started = re.search(rf"^#(\d+) \[\S+ {index}/\d+\]", stderr, re.M)
    assert started, stderr
    done = re.search(rf"^#{started.group(1)} (DONE|CACHED) .*$", stderr, re.M)
    assert done, stderr
    return done.group(0)


def test_the_run_after_a_missed_copy_runs_ahead_and_builds_the_same_image(
    lb: Layerbuild, new_store: Callable[[str], Layerbuild], tmp_path: Path
) -> None:
    ctx = _context(tmp_path)
    first = lb.build(ctx, "-t", "ra:1", *EPOCH)
    assert AHEAD in _done_line(first.stderr, 3) and "seen one" in first.stderr
    assert AHEAD not in _done_line(first.stderr, 4)  # after a RUN: nothing runs ahead
    (ctx / "src" / "a.txt").write_text("two\n")
    again = lb.build(ctx, "-t", "ra:1", *EPOCH)
    assert AHEAD in _done_line(again.stderr, 3) and "seen two" in again.stderr
    assert lb.ok("run", "ra:1", "cat", "/copy", "/count").stdout == "two\n600\n"
    # the image is the one a build without run-ahead makes
    plain = new_store("plain")
    proc = plain.build(ctx, "-t", "ra:1", *EPOCH, env={"LAYERBUILD_RUN_AHEAD": "0"})
    assert AHEAD not in proc.stderr and "seen two" in proc.stderr
    digest = lb.ok("inspect", "ra:1").stdout
    assert json.loads(digest)["Digest"] == json.loads(plain.ok("inspect", "ra:1").stdout)["Digest"]


def test_a_failing_run_ahead_fails_at_its_own_step(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nCOPY src/ /app/\nRUN echo boom-output && exit 3\n"
    )
    proc = lb("build", "--progress", "plain", ctx)
    assert proc.returncode != 0
    assert "exit code 3" in proc.stderr and "boom-output" in proc.stderr
    # its output and its error are under the RUN step, after the COPY's step is done
    copy_done = _done_line(proc.stderr, 2)
    assert proc.stderr.index(copy_done) < proc.stderr.index("boom-output")
    report = tmp_path / "report.json"
    lb("build", "--report", report, ctx)
    steps = json.loads(report.read_text())["steps"]
    assert [s["cache"] for s in steps[:2]] == ["hit", "hit"]  # the COPY was recorded
