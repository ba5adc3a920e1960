"""`build --platform linux/amd64,linux/arm64`: an image index of one image per platform, RUN
steps of arm64 under QEMU, cross-compiling stages on the build platform, and the cache shared
with single-platform builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import MakeContext
from tests.support.cli import Layerbuild, run_tool, unpack

pytestmark = [pytest.mark.root, pytest.mark.overlay, pytest.mark.usefixtures("qemu_binfmt")]
BOTH = "linux/amd64,linux/arm64"


def _platform_image(archive: Path, arch: str, tmp_path: Path) -> Path:
    """The rootfs of `arch`'s image of the index in `archive`, picked and unpacked by skopeo
    and umoci."""
    layout = tmp_path / f"layout-{arch}"
    run_tool(
        "skopeo", "--override-arch", arch, "copy", f"oci-archive:{archive}:1", f"oci:{layout}:1"
    )
    return unpack(layout, "1")


@pytest.mark.tools
def test_two_platforms_give_an_index_whose_arm64_image_ran_on_arm64(
    mlb: Layerbuild, make_context: MakeContext, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM mbusybox\nRUN uname -m > /arch\n"})
    out = tmp_path / "img.tar"
    mlb.build(ctx, "--platform", BOTH, "-t", "app:1", "-o", f"type=oci,dest={out}")
    index = json.loads(run_tool("skopeo", "inspect", "--raw", f"oci-archive:{out}:1"))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]]
    assert platforms == [("linux", "amd64"), ("linux", "arm64")]
    assert (_platform_image(out, "arm64", tmp_path) / "arch").read_text() == "aarch64\n"
    assert (_platform_image(out, "amd64", tmp_path) / "arch").read_text() == "x86_64\n"
    stored = json.loads(mlb.ok("inspect", "--raw", "app:1").stdout)
    assert stored == index
    arm = json.loads(mlb.ok("inspect", "--platform", "linux/arm64", "app:1").stdout)
    assert arm["Architecture"] == "arm64"
    assert mlb.inspect("app:1")["Architecture"] == "amd64"
    assert mlb.ok("run", "--platform", "linux/arm64", "app:1", "cat", "/arch").stdout == (
        "aarch64\n"
    )


def test_cross_compiling_stage_gives_each_platform_its_own_file(
    mlb: Layerbuild, make_context: MakeContext, tmp_path: Path
) -> None:
    dockerfile = (
        "FROM --platform=$BUILDPLATFORM mbusybox AS build\n"
        "ARG TARGETARCH TARGETPLATFORM BUILDPLATFORM TARGETVARIANT\n"
        'RUN echo "$TARGETARCH $TARGETPLATFORM $BUILDPLATFORM [$TARGETVARIANT] $(uname -m)"'
        " > /out-$TARGETARCH\n"
        "FROM mbusybox\n"
        "ARG TARGETARCH\n"
        "COPY --from=build /out-$TARGETARCH /built\n"
    )
    ctx = make_context(tmp_path, {"Dockerfile": dockerfile})
    mlb.build(ctx, "--platform", BOTH, "-t", "cross:1")
    for platform, line in (
        ("linux/amd64", "amd64 linux/amd64 linux/amd64 [] x86_64\n"),
        ("linux/arm64", "arm64 linux/arm64 linux/amd64 [] x86_64\n"),  # built on amd64
    ):
        got = mlb.ok("run", "--platform", platform, "cross:1", "cat", "/built").stdout
        assert got == line


def test_amd64_then_both_platforms_hits_every_amd64_step(
    mlb: Layerbuild, make_context: MakeContext, tmp_path: Path
) -> None:
    ctx = make_context(
        tmp_path,
        {"Dockerfile": "FROM mbusybox\nCOPY a /a\nRUN uname -m > /arch\n", "a": "a\n"},
    )
    mlb.build(ctx, "-t", "app:amd")
    steps = mlb.report_steps(ctx, "--platform", BOTH, "-t", "app:both")
    amd = [s for s in steps if s["stage"].startswith("linux/amd64 ")]
    arm = [s for s in steps if s["stage"].startswith("linux/arm64 ")]
    assert len(amd) == len(arm) == 3
    assert [s["cache"] for s in amd] == ["hit", "hit", "hit"]
    assert [s["cache"] for s in arm[1:]] == ["miss", "miss"]
    amd_alone = mlb.inspect("app:amd")["Digest"]
    assert mlb.inspect("app:both")["Digest"] == amd_alone  # the index's amd64 image


def test_a_single_platform_base_of_another_architecture_is_named(
    mlb: Layerbuild, make_context: MakeContext, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN true\n"})
    proc = mlb("build", "--platform", "linux/arm64", ctx)
    assert proc.returncode != 0
    assert "base image busybox is linux/amd64, not linux/arm64" in proc.stderr


def test_docker_output_refuses_several_platforms(
    mlb: Layerbuild, make_context: MakeContext, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM mbusybox\n"})
    proc = mlb("build", "--platform", BOTH, "-o", f"type=docker,dest={tmp_path / 'd.tar'}", ctx)
    assert proc.returncode == 2
    assert "type=docker cannot export an image of several platforms" in proc.stderr
    assert not (tmp_path / "d.tar").exists()


def test_an_index_is_removed_and_its_blobs_collected(
    mlb: Layerbuild, make_context: MakeContext, tmp_path: Path
) -> None:
    """rmi of a multi-platform image and prune leave no blob of its two images (the base's
    stay, still tagged), and fsck finds the store whole at each point."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM mbusybox\nRUN uname -m > /arch\n"})
    mlb.build(ctx, "--platform", BOTH, "-t", "multi:1")
    index = json.loads(mlb.ok("inspect", "--raw", "multi:1").stdout)
    blobs = mlb.store / "blobs" / "sha256"
    before = {p.name for p in blobs.iterdir()}
    own = {m["digest"].removeprefix("sha256:") for m in index["manifests"]}
    assert own <= before
    mlb.ok("fsck")
    mlb.ok("rmi", "multi:1")
    assert "multi:1" not in mlb.image_names()
    mlb.ok("cache", "prune", "--all")
    mlb.ok("prune")
    after = {p.name for p in blobs.iterdir()}
    assert not own & after  # both platforms' manifests (and what only they named) are gone
    base = json.loads(mlb.ok("inspect", "--raw", "mbusybox:latest").stdout)
    assert {m["digest"].removeprefix("sha256:") for m in base["manifests"]} <= after
    mlb.ok("fsck")
    assert mlb.ok("run", "--platform", "linux/arm64", "mbusybox", "uname", "-m").stdout == (
        "aarch64\n"
    )
