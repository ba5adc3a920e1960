"""`build --push`, `-o type=registry` and FROM pulling a base image that is not in the store,
against the real Distribution registry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context, run_tool
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.registry, pytest.mark.tools]


def test_build_push_puts_every_tag_in_the_registry(
    registry: RegistryServer, lb: Layerbuild, tmp_path: Path
) -> None:
    """--push pushes each -t name after the build; skopeo sees the digest we built."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo pushed > /p\n"})
    first, second = f"{registry.host}/team/app:1", f"{registry.host}/team/app:latest"
    lb.build(ctx, "-t", first, "-t", second, "--push")
    built = lb.inspect(first)["Digest"]
    for ref in (first, second):
        out = run_tool("skopeo", "inspect", "--tls-verify=false", f"docker://{ref}")
        assert json.loads(out)["Digest"] == built


def test_output_type_registry_pushes_too(
    registry: RegistryServer, lb: Layerbuild, tmp_path: Path
) -> None:
    """-o type=registry is buildx's spelling of --push."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nCOPY a /a\n", "a": "a\n"})
    ref = f"{registry.host}/team/out:1"
    lb.build(ctx, "-t", ref, "-o", "type=registry")
    out = run_tool("skopeo", "inspect", "--tls-verify=false", f"docker://{ref}")
    assert json.loads(out)["Digest"] == lb.inspect(ref)["Digest"]


def test_output_type_registry_with_options_pushes_the_converted_image(
    registry: RegistryServer, lb: Layerbuild, tmp_path: Path
) -> None:
    """-o type=registry,compression=zstd,oci-mediatypes=false pushes the converted layers
    under Docker media types; the config is the one built; --metadata-file names what was
    pushed."""
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nCOPY a /a\n", "a": "a\n"})
    ref, meta = f"{registry.host}/team/zstd:1", tmp_path / "meta.json"
    spec = "type=registry,compression=zstd,oci-mediatypes=false,annotation.org.example.k=v"
    lb.build(ctx, "-t", ref, "-o", spec, "--metadata-file", meta)
    # skopeo 1.9 reads the raw manifest only: its parser predates the Docker zstd layer type
    text = run_tool("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    raw = json.loads(text)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert [layer["mediaType"] for layer in raw["layers"]] == [
        "application/vnd.docker.image.rootfs.diff.tar.gzip",  # busybox's, kept
        "application/vnd.docker.image.rootfs.diff.tar.zstd",
    ]
    assert raw["annotations"] == {"org.example.k": "v"}
    assert raw["config"]["digest"] == lb.inspect(ref)["ConfigDigest"]
    pushed = "sha256:" + hashlib.sha256(text.rstrip("\n").encode()).hexdigest()
    assert json.loads(meta.read_text())["containerimage.digest"] == pushed
    assert pushed != lb.inspect(ref)["Digest"]


def test_push_without_a_name_is_a_clear_error(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\n"})
    proc = lb("build", "--push", ctx)
    assert proc.returncode != 0
    assert "--push needs a name" in proc.stderr and "Traceback" not in proc.stderr


def test_from_pulls_a_missing_base_image(
    registry: RegistryServer,
    lb: Layerbuild,
    new_store: Callable[[str], Layerbuild],
    tmp_path: Path,
) -> None:
    """A fresh store builds FROM an image it only finds in the registry: pulled, then used."""
    base_ctx = make_context(tmp_path / "b", {"Dockerfile": "FROM busybox\nRUN echo base > /b\n"})
    base = f"{registry.host}/team/base:1"
    lb.build(base_ctx, "-t", base, "--push")
    fresh = new_store("empty")
    ctx = make_context(tmp_path / "c", {"Dockerfile": f"FROM {base}\nRUN cat /b > /c\n"})
    fresh.build(ctx, "-t", "child:1")
    assert (fresh.rootfs(ctx) / "c").read_text() == "base\n"
    assert base in fresh.image_names()
