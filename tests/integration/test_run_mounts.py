"""RUN --mount through the CLI: cache, secret, bind and tmpfs mounts never reach a layer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, OciImage, make_context, unpack

pytestmark = [pytest.mark.root, pytest.mark.overlay]


def _layer_names(lb: Layerbuild, ctx: Path, *args: str) -> list[list[str]]:
    image = OciImage(lb.build_oci(ctx, *args))
    return [
        [m.name for m in image.layer_members(i)] for i in range(1, len(image.manifest()["layers"]))
    ]


def test_cache_mount_persists_across_builds_and_stays_out_of_the_layer(
    lb: Layerbuild, tmp_path: Path
) -> None:
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN --mount=type=cache,target=/root/.cache/pkg,id=pkgs "
            "echo run >> /root/.cache/pkg/log && wc -l < /root/.cache/pkg/log && echo ok > /out\n"
        },
    )
    first = lb.build(ctx, "--no-cache")
    second = lb.build(ctx, "--no-cache")
    assert "#2 1\n" in first.stderr and "#2 2\n" in second.stderr
    assert _layer_names(lb, ctx, "--no-cache") == [["out"]]  # no root/.cache, no root/


def test_secret_is_readable_but_not_in_layer_history_or_key(
    lb: Layerbuild, tmp_path: Path
) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-value")
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN --mount=type=secret,id=tok,required "
            'test "$(md5sum < /run/secrets/tok | cut -c1-32)" = e74a7345b906b2dd50c8e026a10bc02f '
            "&& stat -c %a /run/secrets/tok > /mode\n"
        },
    )
    oci = lb.build_oci(ctx, "--secret", f"id=tok,src={secret}")
    image = OciImage(oci)
    assert [m.name for m in image.layer_members(-1)] == ["mode"]
    assert "s3cr3t" not in json.dumps(image.config())
    assert (unpack(oci, "1") / "mode").read_text() == "400\n"
    secret.write_text("another value")  # the key covers the spec only, as in BuildKit
    again = lb.build(ctx, "--secret", f"id=tok,src={secret}")
    assert "#2 CACHED" in again.stderr
    missing = lb("build", "--progress", "plain", "--no-cache", ctx)
    assert missing.returncode != 0 and "secret 'tok' is required" in missing.stderr
    env = lb.build(ctx, "--no-cache", "--secret", "id=tok,env=TOK", env={"TOK": "s3cr3t-value"})
    assert "DONE" in env.stderr


def _holding(root: Path, needle: bytes) -> list[str]:
    """Files under `root` whose bytes contain `needle` (symlinks not followed)."""
    return [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and needle in p.read_bytes()
    ]


def test_secret_env_is_seen_by_the_step_only(lb: Layerbuild, tmp_path: Path) -> None:
    """type=secret,env=NAME (Dockerfile 1.10): the step sees the variable, over an ENV of the
    same name; no file unless target= is given; the value is in no layer, config, history,
    cache record or snapshot; a changed value still hits the cache (the key has the spec)."""
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-value")
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\nENV TOKEN=public\n"
            "RUN --mount=type=secret,id=tok,env=TOKEN,required "
            'test "$(printf %s "$TOKEN" | md5sum | cut -c1-32)" = '
            "e74a7345b906b2dd50c8e026a10bc02f "
            "&& ! test -e /run/secrets/tok && echo ok > /out\n"
            "RUN --mount=type=secret,id=tok,env=T2,target=/etc/tok "
            'test "$T2" = "$(cat /etc/tok)" && echo "$TOKEN" > /public\n'
        },
    )
    oci = lb.build_oci(ctx, "--secret", f"id=tok,src={secret}")
    image = OciImage(oci)
    assert [m.name for m in image.layer_members(-2)] == ["out"]
    assert [m.name for m in image.layer_members(-1)] == ["public"]  # no etc/tok
    rootfs = unpack(oci, "1")
    assert (rootfs / "public").read_text() == "public\n"  # the ENV again after the step
    assert "TOKEN=public" in image.config()["config"]["Env"]
    history = lb.ok("history", "--no-trunc", "test:1").stdout
    assert "env=TOKEN" in history
    assert _holding(lb.store, b"s3cr3t") == [] and _holding(rootfs, b"s3cr3t") == []
    assert b"s3cr3t" not in oci.read_bytes()
    secret.write_text("another value")
    again = lb.build(ctx, "--secret", f"id=tok,src={secret}")
    assert "#3 CACHED" in again.stderr and "#4 CACHED" in again.stderr
    missing = lb("build", "--progress", "plain", "--no-cache", ctx)
    assert missing.returncode == 4 and "secret 'tok' is required" in missing.stderr
    from_env = lb.build(
        ctx, "--no-cache", "--secret", "id=tok,env=TOK", env={"TOK": "s3cr3t-value"}
    )
    assert "#3 DONE" in from_env.stderr and "#4 DONE" in from_env.stderr


def test_secret_with_only_an_id_is_the_variable_if_set_else_the_file(
    lb: Layerbuild, tmp_path: Path
) -> None:
    """`--secret id=MYTOK`, as BuildKit's secrets store reads it: the variable MYTOK when it
    is set (even with a file MYTOK there), else the file MYTOK (relative to the working
    directory), else the build is refused before it starts."""
    ctx = make_context(
        tmp_path,
        {"Dockerfile": "FROM busybox\nRUN --mount=type=secret,id=MYTOK cat /run/secrets/MYTOK\n"},
    )
    args = ("--no-cache", "--secret", "id=MYTOK")
    workdir = tmp_path / "work"
    workdir.mkdir()
    missing = lb("build", "--progress", "plain", *args, ctx, cwd=workdir)
    assert missing.returncode == 2, missing.stderr
    assert "no environment variable MYTOK is set and MYTOK is not a file" in missing.stderr
    (workdir / "MYTOK").write_text("from-file")
    assert "#2 from-file" in lb.build(ctx, *args, cwd=workdir).stderr
    from_env = lb.build(ctx, *args, cwd=workdir, env={"MYTOK": "from-env"})
    assert "#2 from-env" in from_env.stderr and "from-file" not in from_env.stderr
    typed = lb.build(
        ctx, "--no-cache", "--secret", "id=MYTOK,type=env,src=OTHER", env={"OTHER": "typed"}
    )
    assert "#2 typed" in typed.stderr


def test_optional_secret_env_not_given_is_empty(lb: Layerbuild, tmp_path: Path) -> None:
    """As BuildKit: an optional env= secret that was not passed is set, to the empty string."""
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN --mount=type=secret,id=none,env=NONE "
            'env | grep -c "^NONE=$" > /count\n'
        },
    )
    assert (lb.rootfs(ctx) / "count").read_text() == "1\n"


def test_bind_from_context_is_read_only_keyed_and_filtered(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN --mount=type=bind,source=src,target=/mnt/src "
            "cat /mnt/src/a; ls /mnt/src; touch /mnt/src/new 2>/dev/null || echo read-only\n",
            "src/a": "A1",
            "src/skip.log": "ignored",
            ".dockerignore": "src/*.log\n",
        },
    )
    out = lb.build(ctx).stderr
    assert "#2 A1" in out and "#2 read-only" in out and "skip.log" not in out
    assert "#2 CACHED" in lb.build(ctx).stderr
    (ctx / "src/a").write_text("A2")
    changed = lb.build(ctx).stderr
    assert "#2 A2" in changed
    assert _layer_names(lb, ctx) == []  # /mnt/src was only a mount point


def test_bind_source_through_a_link_stays_in_the_context(lb: Layerbuild, tmp_path: Path) -> None:
    """source=sub/passwd with ctx/sub -> /<host dir>: resolved inside the context, as in a
    chroot; the host file is never mounted."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "passwd").write_text("HOST-ONLY\n")
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN --mount=type=bind,source=sub/passwd,target=/p cat /p\n",
            str(host / "passwd").lstrip("/"): "context copy\n",
        },
    )
    os.symlink(host, ctx / "sub")
    out = lb.build(ctx).stderr
    assert "#2 context copy" in out and "HOST-ONLY" not in out


def test_bind_rw_from_stage_and_tmpfs_leave_nothing(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path,
        {
            "Dockerfile": "FROM busybox AS build\nRUN mkdir /out && echo built > /out/artifact\n"
            "FROM busybox\n"
            "RUN --mount=type=bind,from=build,source=/out,target=/in,rw "
            "--mount=type=tmpfs,target=/scratch "
            "cat /in/artifact && echo x > /in/artifact && echo y > /scratch/f "
            "&& cp /in/artifact /copied\n"
        },
    )
    rootfs = lb.rootfs(ctx)
    assert (rootfs / "copied").read_text() == "x\n"
    assert not (rootfs / "in").exists() and not (rootfs / "scratch").exists()
    assert os.listdir(lb.store / "cache") is not None


def test_bad_mount_flag_names_the_line(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path, {"Dockerfile": "FROM busybox\nRUN --mount=type=nfs,target=/x true\n"}
    )
    proc = lb("build", ctx)
    assert proc.returncode == 2
    assert "Dockerfile:2" in proc.stderr and "unknown mount type 'nfs'" in proc.stderr
