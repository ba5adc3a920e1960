"""`layerbuild fsck` on a store damaged in each way it detects: the problem is reported with
its message and exit status 10, `fsck --repair` drops it (exit 0), the store then checks clean,
and a rebuild works."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import Layerbuild, make_context

pytestmark = [pytest.mark.root, pytest.mark.overlay]

DOCKERFILE = """\
FROM busybox
COPY greeting /greeting
RUN cat /greeting > /copy && echo built >> /copy
"""
PROBLEMS_FOUND = 10


def _blob(store: Path, digest: str) -> Path:
    return store / "blobs" / "sha256" / digest.removeprefix("sha256:")


def _manifest_digest(store: Path, name: str = "app:1") -> str:
    index = json.loads((store / "index.json").read_text())
    for entry in index["manifests"]:
        if entry["annotations"]["org.opencontainers.image.ref.name"] == name:
            return str(entry["digest"])
    raise AssertionError(f"{name} is not in index.json")


def _layers(store: Path) -> list[str]:
    manifest = json.loads(_blob(store, _manifest_digest(store)).read_text())
    return [str(layer["digest"]) for layer in manifest["layers"]]


def _writable(path: Path) -> Path:
    path.chmod(0o644)
    return path


def _records(store: Path) -> list[Path]:
    keys = store / "cache" / "keys"
    return sorted(p for p in keys.glob("*/*") if not p.name.endswith(".files"))


def _record_of_layer(store: Path, digest: str) -> Path:
    for path in _records(store):
        layer = json.loads(path.read_text())["layer"]
        if layer is not None and layer["digest"] == digest:
            return path
    raise AssertionError(f"no cache record names {digest}")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# each damage returns the report lines fsck must print for it


def flip_a_byte_in_a_layer(store: Path) -> list[str]:
    layer = _layers(store)[-1]
    path = _writable(_blob(store, layer))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    record = _record_of_layer(store, layer).relative_to(store)
    manifest = _manifest_digest(store)
    return [
        f"corrupt blob: blobs/sha256/{layer[7:]}: content hashes to sha256:",
        f"broken manifest: blobs/sha256/{manifest[7:]}: its layer {layer} is corrupt",
        f"dangling name: index.json: app:1: points at {manifest}, which is broken",
        f"broken cache record: {record}: layer {layer} is corrupt (--repair would drop",
    ]


def delete_a_blob_a_manifest_needs(store: Path) -> list[str]:
    layer = _layers(store)[-2]  # the COPY's
    record = _record_of_layer(store, layer).relative_to(store)
    _blob(store, layer).unlink()
    manifest = _manifest_digest(store)
    return [
        f"broken manifest: blobs/sha256/{manifest[7:]}: its layer {layer} is not in the store",
        f"dangling name: index.json: app:1: points at {manifest}, which is broken",
        f"broken cache record: {record}: layer {layer} is not in the store",
    ]


def truncate_a_manifest(store: Path) -> list[str]:
    manifest = _manifest_digest(store)
    path = _writable(_blob(store, manifest))
    path.write_bytes(path.read_bytes()[:50])
    return [
        f"corrupt blob: blobs/sha256/{manifest[7:]}: content hashes to",
        f"dangling name: index.json: app:1: points at {manifest}, which is broken",
    ]


def point_a_record_at_a_missing_layer(store: Path) -> list[str]:
    path = _record_of_layer(store, _layers(store)[-1])
    record = json.loads(path.read_text())
    missing = "sha256:" + "e" * 64
    record["layer"]["digest"] = missing
    path.write_text(json.dumps(record))
    where = path.relative_to(store)
    return [f"broken cache record: {where}: layer {missing} is not in the store (--repair would"]


def make_a_record_file_not_json(store: Path) -> list[str]:
    path = _records(store)[0]
    path.write_text('{"key": ')
    return [f"broken cache record: {path.relative_to(store)}: not a JSON record"]


def leave_a_temp_dir_of_a_dead_process(store: Path) -> list[str]:
    scratch = store / "tmp" / f"build-{_dead_pid()}-k1ll3d"
    (scratch / "downloads").mkdir(parents=True)
    (scratch / "downloads" / "part").write_bytes(b"x" * 100)
    where = scratch.relative_to(store)
    return [f"orphan temp: {where}: temp directory of a process that is gone (--repair would"]


def leave_an_uncommitted_snapshot(store: Path) -> list[str]:
    snapshot = store / "snapshots" / "layers" / f"tmp-{_dead_pid()}-a1b2c3"
    (snapshot / "upper" / "etc").mkdir(parents=True)
    (snapshot / "work" / "work").mkdir(parents=True)
    (snapshot / "work" / "work").chmod(0)
    where = snapshot.relative_to(store)
    return [f"orphan snapshot: {where}: uncommitted snapshot of a process that is gone"]


def tag_a_missing_manifest(store: Path) -> list[str]:
    index_path = store / "index.json"
    index = json.loads(index_path.read_text())
    missing = "sha256:" + "d" * 64
    name = "org.opencontainers.image.ref.name"
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": missing}
    index["manifests"].append({**entry, "size": 500, "annotations": {name: "ghost:1"}})
    index_path.write_text(json.dumps(index))
    return [f"dangling name: index.json: ghost:1: points at {missing}, which is not in the store"]


DAMAGES: list[Callable[[Path], list[str]]] = [
    flip_a_byte_in_a_layer,
    delete_a_blob_a_manifest_needs,
    truncate_a_manifest,
    point_a_record_at_a_missing_layer,
    make_a_record_file_not_json,
    leave_a_temp_dir_of_a_dead_process,
    leave_an_uncommitted_snapshot,
    tag_a_missing_manifest,
]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.__name__ for d in DAMAGES])
def test_fsck_finds_and_repairs(
    lb: Layerbuild, tmp_path: Path, damage: Callable[[Path], list[str]]
) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE, "greeting": "hello\n"})
    lb.build(ctx, "-t", "app:1")
    assert lb.ok("fsck").stdout == "store is clean\n"
    expected = damage(lb.store)

    found = lb("fsck")
    assert found.returncode == PROBLEMS_FOUND, found.stderr
    lines = found.stdout.splitlines()
    assert len(lines) == len(expected) + 1
    for line, start in zip(lines, expected, strict=False):
        assert line.startswith(start), (line, start)
    found_n = f"{len(expected)} problem{'s' if len(expected) > 1 else ''} found"
    assert lines[-1] == f"{found_n}; `layerbuild fsck --repair` fixes them"

    repaired = lb.ok("fsck", "--repair").stdout.splitlines()
    assert repaired[-1] == f"{found_n}, {len(expected)} repaired, 0 left"
    assert len(repaired) == len(expected) + 1
    assert all(line.startswith("repaired ") for line in repaired[:-1])
    assert lb.ok("fsck").stdout == "store is clean\n"

    lb.build(ctx, "-t", "app:1")
    assert lb.ok("fsck").stdout == "store is clean\n"
    assert "busybox:latest" in lb.image_names()
    rootfs = lb.rootfs(ctx)
    assert (rootfs / "copy").read_text() == "hello\nbuilt\n"


def test_quick_skips_rehashing_layers_but_not_manifests(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": DOCKERFILE, "greeting": "hello\n"})
    lb.build(ctx, "-t", "app:1")
    flip_a_byte_in_a_layer(lb.store)
    assert lb.ok("fsck", "--quick").stdout == "store is clean\n"
    truncate_a_manifest(lb.store)
    quick = lb("fsck", "--quick")
    assert quick.returncode == PROBLEMS_FOUND
    assert quick.stdout.startswith("corrupt blob: blobs/sha256/")


def test_check_leaves_the_leftovers_it_reports(lb: Layerbuild, tmp_path: Path) -> None:
    """Opening a store normally clears what dead processes left; fsck must report it first,
    and change nothing without --repair."""
    ingest = lb.store / "ingest" / f"{_dead_pid()}-0123.tmp"
    ingest.write_bytes(b"half a blob")
    snapshot = lb.store / "snapshots" / f"tmp-{_dead_pid()}-0456"
    snapshot.mkdir()
    found = lb("fsck")
    assert found.returncode == PROBLEMS_FOUND
    assert f"orphan temp: ingest/{ingest.name}: temp file of a process" in found.stdout
    assert f"orphan snapshot: snapshots/{snapshot.name}:" in found.stdout
    assert ingest.exists() and snapshot.exists()
    assert os.listdir(lb.store / "tmp") == []


def test_repair_waits_for_a_running_build(lb: Layerbuild, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, {"Dockerfile": "FROM busybox\nRUN sleep 5\n"})
    build = lb.spawn("build", "--progress", "plain", "-t", "slow:1", ctx)
    try:
        layers = lb.store / "snapshots" / "layers"
        for _ in range(300):  # the RUN's upper dir exists: the build holds the store lock
            names = os.listdir(layers) if layers.is_dir() else []
            if any(name.startswith(f"tmp-{build.pid}-") for name in names):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the build never started its RUN step")
        # planted now: a starting build clears what dead builds left in tmp/
        (lb.store / "tmp" / f"build-{_dead_pid()}-old").mkdir()
        checked = lb("fsck")  # shared, beside the build
        assert checked.returncode == PROBLEMS_FOUND and "orphan temp: tmp/build-" in checked.stdout
        waited = lb("fsck", "--repair", "--timeout", "0.5")
        assert waited.returncode == 5
        assert "is locked by another layerbuild" in waited.stderr
    finally:
        assert build.wait(60) == 0
    assert lb.ok("fsck", "--repair").stdout.startswith("repaired orphan temp: tmp/build-")
    assert lb.ok("fsck").stdout == "store is clean\n"
