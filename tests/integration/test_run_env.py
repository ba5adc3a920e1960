"""What a RUN step sees and how it is keyed: loopback, HOME, BUILDPLATFORM, proxy args, a
relative context path, and FROM's own hit/miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]


def test_loopback_is_up_without_network(lb: Layerbuild, tmp_path: Path) -> None:
    """--network none still has a working 127.0.0.1, as under runc."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN ping -c1 -W2 127.0.0.1\n"})
    proc = lb.build(ctx, "--network", "none")
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


def test_home_follows_passwd_changed_by_the_steps_before(lb: Layerbuild, tmp_path: Path) -> None:
    """The file tree is brought up to date lazily, and a RUN only asks it for /etc/passwd:
    a COPY that leaves /etc alone must not hide a RUN's new user, and one that replaces
    /etc/passwd must be seen."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN echo dev:x:1500:1500::/srv/dev:/bin/sh >> /etc/passwd\n"
            "COPY many/ /data/\n"
            "USER dev\nRUN echo dev-home=$HOME uid=$(id -u)\n"
            "USER root\nCOPY passwd /etc/passwd\n"
            "USER dev\nRUN echo new-home=$HOME uid=$(id -u)\n",
            "passwd": "root:x:0:0:root:/root:/bin/sh\ndev:x:1600:1600::/opt/dev:/bin/sh\n",
            **{f"many/f{i}": str(i) for i in range(50)},
        },
    )
    proc = lb.build(ctx)
    assert "dev-home=/srv/dev uid=1500" in proc.stderr, proc.stderr
    assert "new-home=/opt/dev uid=1600" in proc.stderr, proc.stderr


def test_buildplatform_is_the_host_platform(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path, {"Dockerfile": "FROM busybox\nARG BUILDPLATFORM\nRUN echo bp=$BUILDPLATFORM\n"}
    )
    assert "bp=linux/amd64" in lb.build(ctx).stderr


def test_proxy_args_reach_run_but_not_its_key(lb: Layerbuild, tmp_path: Path) -> None:
    """Changing HTTP_PROXY does not miss a RUN (BuildKit keeps proxies out of the key)."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo proxy=$HTTP_PROXY\n"})
    first = lb.report_steps(ctx, "--build-arg", "HTTP_PROXY=http://a:3128")
    second = lb.report_steps(ctx, "--build-arg", "HTTP_PROXY=http://b:3128")
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
    assert [s["cache"] for s in lb.report_steps(ctx)] == ["hit", "miss"]
    assert [s["cache"] for s in lb.report_steps(ctx)] == ["hit", "hit"]
    (base / "Dockerfile").write_text("FROM busybox\nRUN echo 2 > /v\n")
    lb.build(base, "-t", "mybase:1")
    steps = lb.report_steps(ctx)
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
