"""A registry killed mid-push, restarted mid-upload, and a download cut in the middle."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerbuild.errors import RegistryError, RegistryUnavailable
from layerbuild.image.validate import validate_image
from layerbuild.registry.client import RegistryClient
from layerbuild.registry.options import RegistryOptions
from layerbuild.registry.progress import BYTES, EXISTS, TransferEvent
from layerbuild.registry.pull import pull
from layerbuild.registry.push import push
from layerbuild.store.images import read_image
from layerbuild.store.layout import Store
from tests.integration.registry.images import random_image
from tests.support.registry import DropOnceProxy, RegistryServer

pytestmark = [pytest.mark.registry, pytest.mark.slow]

MB = 1 << 20
# small chunks so that a 40 MB layer takes ten PATCH requests; few, fast retries
CHUNKED = RegistryOptions(chunk_threshold=4 * MB, chunk_size=4 * MB, retries=3, backoff=0.1)


def _pulled_back(registry_ref: str, tmp_path: Path, name: str) -> str:
    store = Store.open(tmp_path / name)
    desc = pull(store, registry_ref)
    assert validate_image(store.content.read_bytes, desc) == []
    return str(desc.digest)


def test_registry_killed_mid_push_then_push_again(
    registry: RegistryServer, tmp_path: Path
) -> None:
    store = Store.open(tmp_path / "store")
    desc = random_image(store, [100_000, 40 * MB])
    ref = f"{registry.host}/crash/app:1"

    def kill_midway(event: TransferEvent) -> None:
        if event.action == BYTES and event.done >= 12 * MB and registry.proc is not None:
            registry.kill()

    with pytest.raises(RegistryUnavailable, match="cannot reach registry"):
        push(store, desc, ref, options=CHUNKED, on_progress=kill_midway)
    assert registry.proc is None, "the registry was killed during the push"

    registry.start()
    client = RegistryClient(registry.host)
    with pytest.raises(RegistryError) as missing:
        client.get_manifest("crash/app", "1")
    assert missing.value.status == 404, "no tag may point at an incomplete image"

    events: list[TransferEvent] = []
    pushed = push(store, desc, ref, options=CHUNKED, on_progress=events.append)
    assert pushed.digest == desc.digest
    # the small layer finished before the crash and is not sent again
    assert EXISTS in {e.action for e in events}
    assert _pulled_back(ref, tmp_path, "fresh") == desc.digest


def test_chunked_upload_resumes_across_a_registry_restart(
    registry: RegistryServer, tmp_path: Path
) -> None:
    store = Store.open(tmp_path / "store")
    desc = random_image(store, [40 * MB])
    ref = f"{registry.host}/resume/app:1"
    restarted: list[int] = []

    def restart_midway(event: TransferEvent) -> None:
        if event.action == BYTES and event.done >= 12 * MB and not restarted:
            restarted.append(event.done)
            registry.restart()  # kill -9, then start on the same port and storage

    pushed = push(store, desc, ref, options=CHUNKED, on_progress=restart_midway)
    assert restarted and pushed.digest == desc.digest
    # the upload went on from what the registry held: it was asked where the upload stood
    status_queries = [
        a for a in registry.access_lines() if '"GET /v2/resume/app/blobs/uploads/' in a
    ]
    assert status_queries and all('" 204 ' in a for a in status_queries)
    patches = [a for a in registry.access_lines() if '"PATCH /v2/resume/app/' in a]
    layer_size = store.content.size(read_image(store, desc)[1].layers[0].digest)
    assert len(patches) == -(-layer_size // (4 * MB)), "no chunk was sent twice"
    assert _pulled_back(ref, tmp_path, "fresh") == desc.digest


def test_pull_resumes_after_a_dropped_connection(registry: RegistryServer, tmp_path: Path) -> None:
    source = Store.open(tmp_path / "source")
    desc = random_image(source, [8 * MB])
    push(source, desc, f"{registry.host}/flaky/app:1")

    proxy = DropOnceProxy(registry.port, cut_after=3 * MB)
    try:
        target = Store.open(tmp_path / "target")
        options = RegistryOptions(retries=2, backoff=0.05)
        pulled = pull(target, f"{proxy.host}/flaky/app:1", options=options)
    finally:
        proxy.close()
    assert proxy.cut.is_set(), "the proxy cut a connection"
    assert any(b"Range: bytes=" in r for r in proxy.requests), "the download resumed by Range"
    assert pulled.digest == desc.digest
    assert validate_image(target.content.read_bytes, pulled) == []
    assert not list((target.root / "ingest").iterdir())
