"""Multi-platform indexes and cross-repository mounts against the real registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from layerbuild.errors import RegistryError
from layerbuild.image import mediatypes as mt
from layerbuild.image.descriptor import Descriptor, Platform
from layerbuild.image.manifest import Index
from layerbuild.image.validate import validate_image
from layerbuild.registry.progress import EXISTS, MOUNTED, STARTED, TransferEvent
from layerbuild.registry.pull import pull
from layerbuild.registry.push import push
from layerbuild.store.layout import Store
from tests.integration.registry.images import random_image
from tests.support.cli import run_tool
from tests.support.registry import RegistryCLI, RegistryServer

pytestmark = [pytest.mark.registry]


def _two_arch_index(store: Store) -> tuple[Descriptor, Descriptor, Descriptor]:
    amd = random_image(store, [3000], arch="amd64")
    arm = random_image(store, [4000], arch="arm64")
    index = Index(
        manifests=(
            Descriptor(amd.media_type, amd.digest, amd.size, platform=Platform("amd64", "linux")),
            Descriptor(
                arm.media_type, arm.digest, arm.size, platform=Platform("arm64", "linux", "v8")
            ),
        )
    )
    data = index.to_bytes()
    digest = store.content.put_bytes(data)
    return Descriptor(mt.OCI_INDEX, digest, len(data)), amd, arm


@pytest.mark.tools
def test_multi_arch_index_platform_selection(
    registry: RegistryServer, registry_cli: RegistryCLI, tmp_path: Path
) -> None:
    source = Store.open(tmp_path / "source")
    index_desc, amd, arm = _two_arch_index(source)
    ref = f"{registry.host}/multi/app:1"
    pushed = push(source, index_desc, ref)
    assert pushed.digest == index_desc.digest
    raw = json.loads(
        run_tool("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    )
    assert raw["mediaType"] == mt.OCI_INDEX and len(raw["manifests"]) == 2

    # through the CLI, picking arm64
    arm_cli = registry_cli.with_store(tmp_path / "arm")
    out = arm_cli.ok("pull", "--platform", "linux/arm64", ref)
    arm_store = Store.open(arm_cli.store)
    tagged = arm_store.refs.get(ref)
    assert tagged is not None and tagged.digest == arm.digest
    assert f"Digest: {arm.digest}" in out.stdout
    assert validate_image(arm_store.content.read_bytes, tagged) == []
    # the index is kept; the other platform's blobs are not fetched
    assert arm_store.content.has(index_desc.digest)
    assert not arm_store.content.has(amd.digest)

    # default platform: linux/amd64
    amd_store = Store.open(tmp_path / "amd")
    assert pull(amd_store, ref).digest == amd.digest

    with pytest.raises(RegistryError, match=r"no image for platform linux/s390x .*available"):
        pull(Store.open(tmp_path / "none"), ref, platform=Platform("s390x", "linux"))


def test_cross_repository_mount(registry: RegistryServer, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    desc = random_image(store, [200_000, 300_000])
    layers = json.loads(store.content.read_bytes(desc.digest))["layers"]
    push(store, desc, f"{registry.host}/team/base:1")

    events: list[TransferEvent] = []
    push(store, desc, f"{registry.host}/other/app:1", on_progress=events.append)
    actions = {(e.digest, e.action) for e in events}
    for layer in layers:
        assert (layer["digest"], MOUNTED) in actions
        assert (layer["digest"], STARTED) not in actions
    assert {e.source for e in events if e.action == MOUNTED} == {"team/base"}

    # the registry's access log shows the mount, and no upload of those layers to the new repo
    access = registry.access_lines()
    mounts = [a for a in access if "POST /v2/other/app/blobs/uploads/?" in a and "mount=" in a]
    assert mounts and all('" 201 ' in a for a in mounts)
    for layer in layers:
        quoted = "digest=" + layer["digest"].replace(":", "%3A")
        assert [a for a in access if "/v2/team/base/blobs/uploads/" in a and quoted in a]
        assert not [a for a in access if "/v2/other/app/blobs/uploads/" in a and quoted in a]

    # a pull from the second repository gets the same image
    pulled = pull(Store.open(tmp_path / "fresh"), f"{registry.host}/other/app:1")
    assert pulled.digest == desc.digest

    # pushing again: everything exists
    again: list[TransferEvent] = []
    push(store, desc, f"{registry.host}/other/app:1", on_progress=again.append)
    assert {e.action for e in again} == {EXISTS}


def test_mount_from_pulled_repository(registry: RegistryServer, tmp_path: Path) -> None:
    """Blobs pulled from one repository are mounted when pushed to another."""
    origin = Store.open(tmp_path / "origin")
    desc = random_image(origin, [100_000])
    push(origin, desc, f"{registry.host}/upstream/base:1")

    store = Store.open(tmp_path / "store")
    pulled = pull(store, f"{registry.host}/upstream/base:1")
    events: list[TransferEvent] = []
    push(store, pulled, f"{registry.host}/mine/copy:1", on_progress=events.append)
    assert MOUNTED in {e.action for e in events}
