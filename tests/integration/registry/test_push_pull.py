"""Push and pull against the real Distribution registry, checked with skopeo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from layerbuild.image import mediatypes as mt
from layerbuild.image.validate import validate_image
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.pull import pull
from layerbuild.registry.push import push
from layerbuild.store.layout import Store
from tests.integration.registry.images import random_image
from tests.support.cli import OciImage, hash_blobs, run_tool, stray_files
from tests.support.registry import RegistryCLI, RegistryServer

pytestmark = [pytest.mark.registry, pytest.mark.tools]


def _stored_manifest(root: Path, name: str) -> str:
    index = json.loads((root / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get(mt.ANNOTATION_REF_NAME) == name:
            return str(entry["digest"])
    raise AssertionError(f"{name} is not tagged in {root}: {index}")


def test_push_then_pull_round_trip(
    registry: RegistryServer, registry_cli: RegistryCLI, busybox_layout: Path, tmp_path: Path
) -> None:
    lb = registry_cli
    lb.ok("load", busybox_layout, "-t", "busybox:latest")
    dest = f"{registry.host}/team/busybox:1"
    pushed = lb.ok("push", "busybox:latest", dest)
    digest = _stored_manifest(lb.store, "busybox:latest")
    assert f"1: digest: {digest} size: " in pushed.stdout
    assert "Pushed" in pushed.stderr

    fresh = lb.with_store(tmp_path / "fresh")
    pulled = fresh.ok("pull", dest)
    assert f"Digest: {digest}" in pulled.stdout
    assert _stored_manifest(fresh.store, f"{registry.host}/team/busybox:1") == digest
    store = Store.open(fresh.store)
    desc = store.refs.get(dest)
    assert desc is not None
    assert validate_image(store.content.read_bytes, desc) == []
    assert hash_blobs(fresh.store) == [] and stray_files(fresh.store) == []

    # everything is local now: a second pull downloads nothing
    again = fresh.ok("pull", dest)
    assert "Pulling" not in again.stderr and "Already exists" in again.stderr
    # and a second push uploads nothing
    assert "Pushing" not in lb.ok("push", "busybox:latest", dest).stderr


def test_skopeo_reads_what_we_pushed(
    registry: RegistryServer, registry_cli: RegistryCLI, busybox_layout: Path, tmp_path: Path
) -> None:
    registry_cli.ok("load", busybox_layout, "-t", "busybox:latest")
    dest = f"{registry.host}/tools/busybox:v1"
    registry_cli.ok("push", "busybox:latest", dest)
    digest = _stored_manifest(registry_cli.store, "busybox:latest")

    inspected = json.loads(run_tool("skopeo", "inspect", "--tls-verify=false", f"docker://{dest}"))
    assert inspected["Digest"] == digest
    assert inspected["Architecture"] == "amd64" and inspected["Os"] == "linux"

    out = tmp_path / "copied"
    run_tool("skopeo", "copy", "--src-tls-verify=false", f"docker://{dest}", f"oci:{out}:v1")
    image = OciImage(out)
    assert image.index()["manifests"][0]["digest"] == digest
    assert image.layer_members(0), "the copied layer is a readable tar"


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_pull_what_skopeo_pushed(
    fmt: str,
    registry: RegistryServer,
    registry_cli: RegistryCLI,
    busybox_layout: Path,
) -> None:
    dest = f"{registry.host}/library/busybox:{fmt}"
    run_tool(
        "skopeo", "copy", "--dest-tls-verify=false", "--format", fmt,
        f"oci:{busybox_layout}:latest", f"docker://{dest}",
    )  # fmt: skip
    remote = json.loads(
        run_tool("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{dest}")
    )
    expected_type = mt.OCI_MANIFEST if fmt == "oci" else mt.DOCKER_MANIFEST
    assert remote["mediaType"] == expected_type

    registry_cli.ok("pull", dest)
    store = Store.open(registry_cli.store)
    desc = store.refs.get(dest)
    assert desc is not None and desc.media_type == expected_type
    assert validate_image(store.content.read_bytes, desc) == []
    assert desc.platform is not None and str(desc.platform) == "linux/amd64"


def test_gzip_zstd_and_plain_layers_round_trip(registry: RegistryServer, tmp_path: Path) -> None:
    source = Store.open(tmp_path / "source")
    desc = random_image(source, [5000, 70_000, 123], compressions=["gzip", "zstd", "none"])
    ref = f"{registry.host}/mixed/layers:1"
    pushed = push(source, desc, ref)
    assert pushed.digest == desc.digest

    target = Store.open(tmp_path / "target")
    pulled = pull(target, ref)
    assert pulled.digest == desc.digest
    assert validate_image(target.content.read_bytes, pulled) == []
    layer_types = [
        layer["mediaType"]
        for layer in json.loads(target.content.read_bytes(pulled.digest))["layers"]
    ]
    assert layer_types == [mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD, mt.OCI_LAYER]


def test_pull_missing_tag_is_a_clear_404(
    registry: RegistryServer, registry_cli: RegistryCLI
) -> None:
    proc = registry_cli("pull", f"{registry.host}/nothing/here:1")
    assert proc.returncode == 8
    assert "not found" in proc.stderr and "MANIFEST_UNKNOWN" in proc.stderr
    assert "hint:" in proc.stderr


def test_one_connection_serves_many_requests_without_retries(
    registry: RegistryServer, tmp_path: Path
) -> None:
    """Keep-alive reuse must work on its own: with retries off, a connection handed back to
    the pool before its response was finished would fail the next request."""
    strict = RegistryOptions(retries=0, parallel=1, chunk_threshold=1 << 20, chunk_size=1 << 19)
    source = Store.open(tmp_path / "source")
    desc = random_image(source, [3 << 20, 200_000, 10, 70_000])
    ref = f"{registry.host}/keepalive/app:1"
    push(source, desc, ref, options=strict)
    target = Store.open(tmp_path / "target")
    assert pull(target, ref, options=strict).digest == desc.digest
    assert validate_image(target.content.read_bytes, desc) == []
