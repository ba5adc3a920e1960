"""`build --shm-size` and `build --ulimit`: what RUN steps see, and how they are keyed.

BuildKit keys both (the /dev/shm tmpfs is a mount of the ExecOp, ulimits are in its Meta), so
a changed value runs the step again; without them the keys are those of a build that never
heard of the options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

SHOW = (
    "FROM busybox\n"
    "RUN echo nofile=$(ulimit -n):$(ulimit -Hn) nproc=$(ulimit -u) "
    "shm=$(grep ' /dev/shm ' /proc/mounts | grep -o 'size=[0-9a-z]*')\n"
)


def _run_step(lb: Layerbuild, ctx: Path, *args: str) -> tuple[dict[str, Any], str]:
    """The RUN step's report entry and the line it printed."""
    report = ctx.parent / "report.json"
    proc = lb.build(ctx, "--network", "none", "--no-cache", "--report", report, *args)
    step = json.loads(report.read_text())["steps"][-1]
    lines = _printed(proc.stderr)
    return step, lines[-1] if lines else ""


def _printed(stderr: str) -> list[str]:
    """The lines SHOW's RUN printed (not the progress line that quotes its command)."""
    return [line for line in stderr.splitlines() if "nofile=" in line and "echo" not in line]


def test_shm_size_sets_the_dev_shm_tmpfs(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": SHOW})
    assert "shm=size=65536k" in _run_step(lb, ctx)[1]  # docker's 64m
    assert "shm=size=131072k" in _run_step(lb, ctx, "--shm-size", "128m")[1]
    assert "shm=size=1024k" in _run_step(lb, ctx, "--shm-size", "1048576")[1]


def test_ulimits_reach_root_and_other_users(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": SHOW + "USER nobody\n" + SHOW.split("\n")[1]})
    report = ctx.parent / "report.json"
    proc = lb.build(
        ctx,
        "--ulimit",
        "nofile=1000:2000",
        "--ulimit",
        "nproc=300",
        "--ulimit",
        "nofile=1024:2048",  # the last one of a type wins, as in docker
        "--report",
        report,
    )
    printed = _printed(proc.stderr)
    assert len(printed) == 2
    for line in printed:
        assert "nofile=1024:2048 nproc=300" in line


def test_limits_are_part_of_the_run_key(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": SHOW})
    report = ctx.parent / "report.json"

    def run_step(*args: str) -> dict[str, Any]:
        lb.build(ctx, "--network", "none", "--report", report, *args)
        step = json.loads(report.read_text())["steps"][-1]
        assert isinstance(step, dict)
        return step

    plain = run_step()
    assert run_step()["cache"] == "hit"
    limited = run_step("--ulimit", "nofile=512")
    assert limited["cache"] == "miss" and "ulimits" in limited["reason"]
    both = run_step("--ulimit", "nofile=512", "--shm-size", "32m")
    assert both["cache"] == "miss" and "shm-size" in both["reason"]
    assert len({plain["key"], limited["key"], both["key"]}) == 3
    assert run_step("--shm-size", "32m", "--ulimit", "nofile=512:512")["cache"] == "hit"
    assert run_step()["key"] == plain["key"]  # without them, the key of before


@pytest.mark.parametrize(
    ("option", "value", "why"),
    [
        ("--ulimit", "nofile=abc", "not a whole number"),
        ("--ulimit", "bogus=1", "invalid ulimit type 'bogus'"),
        ("--ulimit", "nofile=2048:1024", "2048 > 1024"),
        ("--ulimit", "nofile", "expected TYPE=SOFT[:HARD]"),
        ("--shm-size", "12x", "invalid size '12x'"),
    ],
)
def test_bad_limits_are_cli_errors(
    lb: Layerbuild, tmp_path: Path, option: str, value: str, why: str
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": SHOW})
    proc = lb("build", option, value, ctx)
    assert proc.returncode == 2
    assert option in proc.stderr and why in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_hard_limit_above_the_builders_is_a_clear_error(lb: Layerbuild, tmp_path: Path) -> None:
    """Root may raise a hard limit, but not above the kernel's ceiling for open files."""
    ceiling = int(Path("/proc/sys/fs/nr_open").read_text())
    ctx = make_context(tmp_path, {"Dockerfile": SHOW})
    proc = lb("build", "--ulimit", f"nofile={ceiling + 1}", ctx)
    assert proc.returncode != 0
    assert f"cannot set --ulimit nofile={ceiling + 1}:{ceiling + 1}" in proc.stderr
    assert "Traceback" not in proc.stderr
