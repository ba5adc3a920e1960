"""A two-platform build pushed as an index with all its manifests, which podman pulls from the
Distribution registry, picking the manifest of the architecture asked for; pulled back and
loaded back by layerbuild."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import MakeContext
from tests.support.cli import Layerbuild, run_tool
from tests.support.registry import RegistryServer

pytestmark = [
    pytest.mark.root,
    pytest.mark.overlay,
    pytest.mark.registry,
    pytest.mark.tools,
    pytest.mark.usefixtures("qemu_binfmt"),
]


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """podman over a private vfs store (the runroot short: podman refuses one over 50
    characters, which pytest's tmp_path exceeds)."""
    runroot = Path(tempfile.mkdtemp(prefix="lb-podman-", dir="/tmp"))
    base = ("--root", str(tmp_path / "podman"), "--runroot", str(runroot))

    def call(*args: str) -> str:
        return run_tool("podman", *base, "--storage-driver", "vfs", "--events-backend", "none",
                        *args)  # fmt: skip

    try:
        yield call
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def test_podman_pulls_each_platform_of_a_pushed_index(
    mlb: Layerbuild,
    registry: RegistryServer,
    podman: Callable[..., str],
    make_context: MakeContext,
    tmp_path: Path,
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM mbusybox\nRUN uname -m > /arch\n"})
    ref = f"{registry.host}/multi/app:1"
    mlb.build(
        ctx, "--platform", "linux/amd64,linux/arm64", "-t", ref, "--push",
        "--insecure-registry", registry.host,
    )  # fmt: skip
    raw = json.loads(
        run_tool("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    )
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert raw == json.loads(mlb.ok("inspect", "--raw", ref).stdout)
    for arch, machine in (("arm64", "aarch64"), ("amd64", "x86_64")):
        podman("pull", "--tls-verify=false", "--arch", arch, ref)
        got = podman("image", "inspect", "--format", "{{.Architecture}}", ref)
        assert got.strip() == arch
        mount = podman("image", "mount", ref).strip()
        assert Path(mount, "arch").read_text() == f"{machine}\n"
        podman("image", "unmount", ref)
        podman("rmi", ref)


def test_an_index_saved_and_loaded_back_keeps_both_platforms(
    mlb: Layerbuild, make_context: MakeContext, tmp_path: Path
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM mbusybox\nRUN uname -m > /arch\n"})
    mlb.build(ctx, "--platform", "linux/amd64,linux/arm64", "-t", "app:1")
    mlb.ok("save", "app:1", "-o", tmp_path / "app.tar")
    other = Layerbuild(tmp_path / "other")
    other.ok("load", tmp_path / "app.tar")
    index = mlb.ok("inspect", "--raw", "app:1").stdout
    assert other.ok("inspect", "--raw", "app:1").stdout == index
    rows = json.loads(other.ok("images", "--format", "json").stdout)
    assert rows[0]["platforms"] == ["linux/amd64", "linux/arm64"]
