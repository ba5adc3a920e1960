"""What a RUN step sees and how it is keyed: loopback, HOME, BUILDPLATFORM, proxy args, a
relative context path, and FROM's own hit/miss."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]


def _report(lb: Layerbuild, ctx: Path, *args: str) -> list[dict[str, Any]]:
    out = ctx.parent / "report.json"
    lb.build(ctx, "--report", out, *args)
    steps = json.loads(out.read_text())["steps"]
    assert isinstance(steps, list)
    return steps


def test_loopback_is_up_without_network(lb: Layerbuild, tmp_path: Path) -> None:
    """--network none (the default) still has a working 127.0.0.1, as under runc."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN ping -c1 -W2 127.0.0.1\n"})
    proc = lb.build(ctx)
    assert "1 packets received" in proc.stderr


def test_home_comes_from_the_users_passwd_entry(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\nRUN echo root-home=$HOME\n"
            "USER app\nRUN echo app-home=$HOME\n"
        },
    )
    proc = lb.build(ctx)
    assert "root-home=/root" in proc.stderr and "app-home=/home/app" in proc.stderr


def test_buildplatform_is_the_host_platform(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path, {"Dockerfile": "FROM busybox\nARG BUILDPLATFORM\nRUN echo bp=$BUILDPLATFORM\n"}
    )
    assert "bp=linux/amd64" in lb.build(ctx).stderr


def test_proxy_args_reach_run_but_not_its_key(lb: Layerbuild, tmp_path: Path) -> None:
    """Changing HTTP_PROXY does not miss a RUN (BuildKit keeps proxies out of the key)."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo proxy=$HTTP_PROXY\n"})
    first = _report(lb, ctx, "--build-arg", "HTTP_PROXY=http://a:3128")
    second = _report(lb, ctx, "--build-arg", "HTTP_PROXY=http://b:3128")
    assert first[1]["cache"] == "miss" and second[1]["cache"] == "hit"


def test_relative_context_bind_mount(lb: Layerbuild, tmp_path: Path) -> None:
    """`build .` with a context bind mount: the mount shows the context, not the cwd of the
    sandbox."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\nRUN --mount=type=bind,source=src,target=/mnt "
            "cat /mnt/a.txt\n",
            "src/a.txt": "from the context\n",
        },
    )
    proc = lb("build", "--progress", "plain", ".", cwd=ctx)
    assert proc.returncode == 0, proc.stderr
    assert "from the context" in proc.stderr


def test_a_changed_base_misses_at_from(lb: Layerbuild, tmp_path: Path) -> None:
    """FROM reports the miss, with the reason, when its base image changed."""
    base = make_context(tmp_path / "base", {"Dockerfile": "FROM busybox\nRUN echo 1 > /v\n"})
    lb.build(base, "-t", "mybase:1")
    ctx = make_context(tmp_path / "app", {"Dockerfile": "FROM mybase:1\nRUN cat /v\n"})
    assert [s["cache"] for s in _report(lb, ctx)] == ["hit", "miss"]
    assert [s["cache"] for s in _report(lb, ctx)] == ["hit", "hit"]
    (base / "Dockerfile").write_text("FROM busybox\nRUN echo 2 > /v\n")
    lb.build(base, "-t", "mybase:1")
    steps = _report(lb, ctx)
    assert steps[0]["cache"] == "miss" and steps[0]["reason"] == "base image changed"
    assert steps[1]["reason"] == "parent step missed"


def test_shebang_heredoc_runs_under_its_interpreter(lb: Layerbuild, tmp_path: Path) -> None:
    """`RUN <<EOF` whose body starts with #! runs that interpreter (with its argument), as
    Docker does, not the SHELL: here `sh -x` traces the commands it runs."""
    ctx = make_context(
        tmp_path,
        {"Dockerfile": "FROM busybox\nRUN <<EOF\n#!/bin/sh -x\necho traced > /t\nEOF\n"},
    )
    proc = lb.build(ctx)
    assert "+ echo traced" in proc.stderr
