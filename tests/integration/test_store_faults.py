"""The store under local faults (issue 18): a disk that fills up during a pull, blobs damaged
on disk, and a store on a read-only mount.

A full disk ends a pull with exit status 9 and a message naming the store, never as "cannot
reach registry" after retries, and never leaves a blob whose bytes do not hash to its name;
a damaged stored blob is pulled again instead of kept as "Already exists"; commands that only
read work on a read-only store, and those that must write say that it is read-only. Every
store is checked with `layerbuild fsck` and by hashing each blob here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from layerbuild.store.layout import Store
from tests.integration.registry.images import random_image
from tests.support.cli import Layerbuild, hash_blobs, make_context, stray_files
from tests.support.disks import fill, tmpfs
from tests.support.registry import RegistryCLI, RegistryServer, registry, registry_cli

__all__ = ["registry", "registry_cli"]  # fixtures

pytestmark = [pytest.mark.root, pytest.mark.registry, pytest.mark.slow]

MB = 1 << 20


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs of this test's own, unmounted afterwards."""
    with tmpfs(tmp_path / "disk", "64m") as mnt:
        yield mnt


def _pushed(registry: RegistryServer, lb: RegistryCLI, sizes: list[int], name: str) -> str:
    """A random image of uncompressed layers of `sizes`, pushed as REGISTRY/faults/NAME:1."""
    source = lb.with_store(lb.store.parent / f"source-{name}")
    store = Store.open(source.store)
    store.refs.set(f"{name}:1", random_image(store, sizes))
    ref = f"{registry.host}/faults/{name}:1"
    source.ok("push", f"{name}:1", ref)
    return ref


def _clean(lb: RegistryCLI) -> None:
    """Every blob hashes to its name, nothing half-written is left, fsck finds nothing."""
    assert hash_blobs(lb.store) == []
    assert stray_files(lb.store) == []
    fsck = lb("fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def _refused(proc: subprocess.CompletedProcess[str], code: int = 9) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_pull_that_fills_the_disk(
    registry: RegistryServer, registry_cli: RegistryCLI, disk: Path
) -> None:
    """Issue 18's report: a store with 12 MiB free, an image of three 8 MiB layers. The pull
    fails at once on the local error, naming the store; nothing corrupt is kept; with space
    again the same pull completes."""
    ref = _pushed(registry, registry_cli, [8 * MB, 8 * MB, 8 * MB], "big")
    lb = registry_cli.with_store(disk / "store")
    lb.ok("images")  # creates the store
    filler = fill(disk, leave=12 * MB)
    gets_before = len(registry.access_lines())
    err = _refused(lb("pull", ref))
    assert f"No space left on device: {lb.store}/ingest/" in err
    assert f"(in the store at {lb.store})" in err
    assert "hint: free space on that file system" in err
    assert "--root or LAYERBUILD_ROOT" in err
    assert "cannot reach registry" not in err
    # no blob was asked for again with Range, as a dropped connection would be
    blob_gets = [
        line
        for line in registry.access_lines()[gets_before:]
        if '"GET /v2/faults/big/blobs/' in line
    ]
    assert len(blob_gets) <= 4, blob_gets  # the config and the three layers, at most once
    _clean(lb)
    assert lb("inspect", ref).returncode != 0

    filler.unlink()
    pulled = lb.ok("pull", ref)
    assert "Pull complete" in pulled.stderr
    _clean(lb)
    source = registry_cli.with_store(registry_cli.store.parent / "source-big")
    assert lb.inspect(ref)["Digest"] == source.inspect("big:1")["Digest"]


def test_a_damaged_stored_blob_is_pulled_again(
    registry: RegistryServer, registry_cli: RegistryCLI
) -> None:
    """A stored layer cut short (what an older layerbuild left on a full disk) or with a
    changed byte is not "Already exists": it is removed, said so, and fetched again. A large
    layer's content is hashed only with --verify; its size always."""
    ref = _pushed(registry, registry_cli, [1 * MB, 20 * MB], "app")
    lb = registry_cli
    lb.ok("pull", ref)
    layers = lb.inspect(ref)["Layers"]
    small, large = (lb.store / "blobs" / "sha256" / d.removeprefix("sha256:") for d in layers)
    short = [d.removeprefix("sha256:")[:12] for d in layers]
    size = large.stat().st_size

    _damage(small, flip=True)
    _damage(large, flip=False)
    err = lb.ok("pull", ref).stderr
    assert f"{short[0]}: Stored copy is corrupt (hashes to sha256:" in err
    assert f"{short[1]}: Stored copy is corrupt (holds {size - 1} bytes, not {size})" in err
    assert f"{short[0]}: Already exists" not in err
    assert f"{short[1]}: Already exists" not in err
    _clean(lb)

    _damage(large, flip=True)
    assert f"{short[1]}: Already exists" in lb.ok("pull", ref).stderr
    err = lb.ok("pull", "--verify", ref).stderr
    assert f"{short[1]}: Stored copy is corrupt (hashes to sha256:" in err
    _clean(lb)


def _damage(blob: Path, *, flip: bool) -> None:
    """Change the blob's last byte (`flip`), or cut the byte off."""
    data = blob.read_bytes()
    blob.chmod(0o644)
    blob.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]) if flip else data[:-1])


CLI = TypeVar("CLI", bound=Layerbuild)


@contextlib.contextmanager
def _read_only(lb: CLI, mnt: Path) -> Iterator[CLI]:
    """The CLI over a read-only bind mount of `lb`'s store at `mnt`."""
    mnt.mkdir()
    subprocess.run(["mount", "--bind", lb.store, mnt], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", mnt], check=True)
        yield dataclasses.replace(lb, store=mnt)
    finally:
        subprocess.run(["umount", mnt], check=True)


def test_read_only_store(
    registry: RegistryServer, registry_cli: RegistryCLI, tmp_path: Path
) -> None:
    """images, inspect, history, save and push work on a read-only store (push records where
    blobs went only when it can); tag and pull say that the store is read-only."""
    ref = _pushed(registry, registry_cli, [100_000], "ro")
    other = _pushed(registry, registry_cli, [50_000], "other")
    registry_cli.ok("pull", ref)
    before = sorted(p.name for p in registry_cli.store.rglob("*"))

    with _read_only(registry_cli, tmp_path / "read-only") as read_only:
        assert read_only.image_names() == {ref}
        digest = read_only.inspect(ref)["Digest"]
        read_only.ok("history", ref)
        read_only.ok("save", ref, "-o", tmp_path / "saved.tar")
        assert (tmp_path / "saved.tar").stat().st_size > 100_000
        pushed = read_only.ok("push", ref, f"{registry.host}/faults/copy:1")
        assert f"1: digest: {digest}" in pushed.stdout

        for args in (("tag", ref, "copy:2"), ("pull", other)):
            err = _refused(read_only(*args))
            assert f"Read-only file system: {read_only.store}/" in err
            assert f"(in the store at {read_only.store}); the store is read-only" in err
            assert "hint: that file system is mounted read-only: remount it read-write" in err
    assert sorted(p.name for p in registry_cli.store.rglob("*")) == before
    _clean(registry_cli)
    registry_cli.ok("pull", other)  # the same store, writable: works


@pytest.mark.overlay
def test_run_on_read_only_store(lb: Layerbuild, tmp_path: Path) -> None:
    """run of an image whose layers are unpacked works on a read-only store (what it writes
    goes to a throwaway directory outside the store); an image never unpacked cannot be, and
    that is said."""
    lb.ok("run", "--network", "none", "busybox", "true")  # unpacks busybox
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nCOPY a /a\n", "a": "A\n"})
    lb.build(ctx, "-t", "app:1")
    with _read_only(lb, tmp_path / "read-only") as read_only:
        wrote = read_only.ok(
            "run", "--network", "none", "busybox", "sh", "-c", "echo x>/x; cat /x"
        )
        assert wrote.stdout == "x\n"
        err = _refused(read_only("run", "--network", "none", "app:1", "cat", "/a"))
        assert f"image app:1 is not unpacked in the store at {read_only.store}, which is " in err
        assert "read-only" in err and "hint: run it once while the store is writable" in err
    assert lb.ok("run", "--network", "none", "app:1", "cat", "/a").stdout == "A\n"


def test_tag_on_a_full_disk(disk: Path) -> None:
    """tag on a full disk ends with the store named and a hint, and the names stay as they
    were (index.json is replaced atomically or not at all)."""
    store = Store.open(disk / "store")
    store.refs.set("img:1", random_image(store, [1000]))
    lb = Layerbuild(disk / "store")
    filler = fill(disk, leave=0)
    err = _refused(lb("tag", "img:1", "img:2"))
    assert f"No space left on device: {lb.store}/" in err
    assert f"(in the store at {lb.store})" in err and "hint: free space" in err
    assert lb.image_names() == {"img:1"}
    filler.unlink()
    lb.ok("tag", "img:1", "img:2")
    assert lb.image_names() == {"img:1", "img:2"}
    assert hash_blobs(lb.store) == [] and stray_files(lb.store) == []


def test_a_damaged_blob_is_fetched_again_from_where_it_came(
    registry: RegistryServer, registry_cli: RegistryCLI, tmp_path: Path
) -> None:
    """save meets a pulled layer that does not verify: the layer is removed, fetched again
    from the repository it was pulled from (sources/), and the save goes on, saying so. A
    blob of no known source is removed and the error says to pull or rebuild."""
    ref = _pushed(registry, registry_cli, [300_000], "again")
    lb = registry_cli
    lb.ok("pull", ref)
    layer = lb.inspect(ref)["Layers"][0]
    blob = lb.store / "blobs" / "sha256" / layer.removeprefix("sha256:")
    _damage(blob, flip=True)
    saved = lb.ok("save", ref, "-o", tmp_path / "saved.tar")
    assert (
        f"warning: stored blob {layer} was corrupt and has been removed; fetched it again "
        f"from {registry.host}/faults/again" in saved.stderr
    )
    _clean(lb)

    local = lb.with_store(tmp_path / "local")  # made here, never pushed: no source known
    store = Store.open(local.store)
    store.refs.set("local:1", random_image(store, [1000]))
    layer = local.inspect("local:1")["Layers"][0]
    blob = local.store / "blobs" / "sha256" / layer.removeprefix("sha256:")
    _damage(blob, flip=True)
    err = _refused(local("save", "local:1", "-o", tmp_path / "local.tar"), code=5)
    assert f"stored blob {layer} in {local.store}: unexpected digest" in err
    assert "has been removed from the store: pull or rebuild the image that uses it" in err
    assert not blob.exists()


@pytest.mark.overlay
def test_run_fetches_a_damaged_layer_again(
    registry: RegistryServer, registry_cli: RegistryCLI, busybox_layout: Path
) -> None:
    """run of a pulled image whose layer was damaged before it was ever unpacked."""
    source = registry_cli.with_store(registry_cli.store.parent / "source-busybox")
    source.ok("load", busybox_layout, "-t", "busybox:latest")
    ref = f"{registry.host}/faults/busybox:1"
    source.ok("push", "busybox:latest", ref)
    lb = registry_cli
    lb.ok("pull", ref)
    layer = lb.inspect(ref)["Layers"][0]
    _damage(lb.store / "blobs" / "sha256" / layer.removeprefix("sha256:"), flip=True)
    ran = lb.ok("run", "--network", "none", ref, "echo", "ran")
    assert ran.stdout == "ran\n"
    assert f"stored blob {layer} was corrupt" in ran.stderr
    _clean(lb)
