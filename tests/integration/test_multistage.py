"""Multi-stage Dockerfiles: COPY --from, FROM a stage, --target, and which stages are built."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, OciImage, make_context, unpack

pytestmark = pytest.mark.tools

FILES: dict[str, str | bytes] = {"a.txt": "from a\n", "b.txt": "from b\n"}


def _ctx(tmp_path: Path, dockerfile: str) -> Path:
    return make_context(tmp_path, {"Dockerfile": dockerfile, **FILES})


def test_copy_from_by_name_and_by_index(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY --from=NAME and --from=INDEX read earlier stages' files, owners kept."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox AS first\nCOPY --chown=1000:1000 a.txt /out/a.txt\n"
        "FROM scratch AS second\nCOPY b.txt /b.txt\n"
        "FROM busybox\nCOPY --from=first /out/a.txt /final/\nCOPY --from=1 /b.txt /final/\n",
    )
    root = lb.rootfs(ctx)
    assert (root / "final/a.txt").read_text() == "from a\n"
    assert (root / "final/b.txt").read_text() == "from b\n"
    st = (root / "final/a.txt").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)


def test_copy_from_an_image(lb: Layerbuild, tmp_path: Path) -> None:
    """COPY --from=busybox reads a file out of an image from the store."""
    ctx = _ctx(tmp_path, "FROM scratch\nCOPY --from=busybox /etc/passwd /passwd\n")
    assert "app:x:1000:1000" in (lb.rootfs(ctx) / "passwd").read_text()


def test_from_a_previous_stage_keeps_its_layers_and_config(lb: Layerbuild, tmp_path: Path) -> None:
    """FROM <stage> starts from that stage's layers and config (ENV, WORKDIR carried on)."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox AS base\nENV GREETING=hi\nWORKDIR /w\nCOPY a.txt .\n"
        "FROM base\nCOPY b.txt .\n",
    )
    out = lb.build_oci(ctx)
    root = unpack(out, "1")
    assert sorted(os.listdir(root / "w")) == ["a.txt", "b.txt"]
    config = OciImage(out).config()["config"]
    assert "GREETING=hi" in config["Env"]
    assert config["WorkingDir"] == "/w"


def test_target_stops_at_the_named_stage(lb: Layerbuild, tmp_path: Path) -> None:
    """--target builds that stage only; later stages (even broken ones) are not run."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox AS wanted\nCOPY a.txt /a.txt\nLABEL stage=wanted\n"
        "FROM busybox AS later\nCOPY does-not-exist /x\nRUN false\n",
    )
    root = lb.rootfs(ctx, "--target", "wanted")
    assert (root / "a.txt").is_file()
    assert lb.config("test:1")["config"]["Labels"] == {"stage": "wanted"}


def test_unused_stages_are_skipped(lb: Layerbuild, tmp_path: Path) -> None:
    """Stages the target does not depend on are never built: one with a RUN, one that copies
    a missing file; the build passes."""
    ctx = _ctx(
        tmp_path,
        "FROM busybox AS runner\nRUN echo never; exit 1\n"
        "FROM busybox AS broken\nCOPY missing.txt /\n"
        "FROM busybox\nCOPY a.txt /a.txt\n",
    )
    proc = lb.build(ctx, "-t", "ok:1")
    assert "never" not in proc.stdout + proc.stderr
    assert "RUN" not in proc.stderr and "missing.txt" not in proc.stderr  # never started
    assert "ok:1" in lb.image_names()


def test_failing_needed_stage_writes_no_tag(lb: Layerbuild, tmp_path: Path) -> None:
    """A RUN that fails in a stage the target needs stops the build with a non-zero exit and
    a message naming the step's line and the failure (exit status, or "not supported" where
    RUN cannot run), writes no tag, and leaves the previous image of the tag in place."""
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY a.txt /a.txt\n")
    lb.build(ctx, "-t", "app:1")
    before = lb.inspect("app:1")["Digest"]
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS builder\nRUN exit 3\nFROM busybox\nCOPY --from=builder /x /x\n"
    )
    proc = lb("build", "-t", "app:1", "-t", "new:1", ctx)
    assert proc.returncode != 0
    assert "exit code 3" in proc.stderr or "not supported" in proc.stderr
    assert "Dockerfile:2" in proc.stderr and "RUN exit 3" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "new:1" not in lb.image_names()
    assert lb.inspect("app:1")["Digest"] == before


def test_stage_names_are_case_insensitive(lb: Layerbuild, tmp_path: Path) -> None:
    """`AS Builder` is found by --from=builder, as Docker lowercases stage names."""
    ctx = _ctx(
        tmp_path,
        "FROM scratch AS Builder\nCOPY a.txt /a\nFROM busybox\nCOPY --from=builder /a /a\n",
    )
    assert (lb.rootfs(ctx) / "a").read_text() == "from a\n"


def test_global_arg_chooses_the_stage_base(lb: Layerbuild, tmp_path: Path) -> None:
    """ARG before the first FROM can name the stage a FROM starts from."""
    ctx = _ctx(
        tmp_path,
        "ARG BASE=one\nFROM scratch AS one\nCOPY a.txt /\nFROM scratch AS two\nCOPY b.txt /\n"
        "FROM ${BASE}\n",
    )
    assert os.listdir(lb.rootfs(ctx)) == ["a.txt"]
    assert os.listdir(lb.rootfs(ctx, "--build-arg", "BASE=two")) == ["b.txt"]
