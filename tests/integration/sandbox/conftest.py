"""Fixtures for the sandbox tests: real namespaces and overlayfs over the busybox fixture.

Name: busybox_lowers · Scope: session · Depends: busybox_layout (tests/integration/conftest.py)
    The busybox image loaded into a session store; its layers as LayerSnapshots lowerdirs.
Name: sandbox · Scope: function · Depends: busybox_lowers · Params: the snapshotters
    `sandbox.run("shell command", **RunSpec fields)` runs one step in a fresh upper dir and
    returns its exit code, output and changes; the step directories are removed afterwards.
    Every test using it runs once per snapshotter (overlay, fuse-overlayfs, copy): the changes
    a step produces must not depend on how its rootfs was made. `sandbox.mode` names it.

Tests marked `root` are skipped (with the reason) when not running as root, tests marked
`overlay` when the kernel has no overlayfs.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from layerbuild.export.load import load
from layerbuild.image.changes import Change
from layerbuild.image.manifest import Layer
from layerbuild.sandbox import RunSpec, overlay_changes, run
from layerbuild.sandbox.runner import SNAPSHOTTERS
from layerbuild.store import Store
from layerbuild.store.images import read_image
from layerbuild.store.layers import LayerSnapshots, StepDirs

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def overlay_available() -> bool:
    with open("/proc/filesystems", encoding="ascii") as f:
        return any(line.split()[-1:] == ["overlay"] for line in f)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:
            continue
        if item.get_closest_marker("root") and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="needs root (namespaces, mounts, mknod)"))
        if item.get_closest_marker("overlay") and not overlay_available():
            item.add_marker(pytest.mark.skip(reason="the kernel has no overlayfs"))


@dataclass(frozen=True)
class Busybox:
    store: Store
    layers: tuple[Layer, ...]
    snapshots: LayerSnapshots
    lowerdirs: tuple[Path, ...]


@pytest.fixture(scope="session")
def busybox_lowers(busybox_layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Busybox:
    store = Store.open(tmp_path_factory.mktemp("sandbox") / "store")
    (_, desc), *_ = load(store, busybox_layout)
    _, manifest, config = read_image(store, desc)
    layers = tuple(
        Layer(diff, d.digest, d.size, d.media_type)
        for diff, d in zip(config.diff_ids, manifest.layers, strict=True)
    )
    snaps = LayerSnapshots(store.root, rootless=False)
    return Busybox(store, layers, snaps, tuple(snaps.lowerdirs(store, layers)))


@dataclass
class Result:
    code: int
    output: bytes
    changes: list[Change]
    step: StepDirs

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    @property
    def paths(self) -> list[tuple[str, str]]:
        return [(c.kind.name, c.path) for c in self.changes]

    def change(self, path: str) -> Change:
        return next(c for c in self.changes if c.path == path)


@dataclass
class Sandbox:
    busybox: Busybox
    mode: str = "overlay"
    steps: list[StepDirs] = field(default_factory=list)

    def spec(self, script: str, **fields: object) -> RunSpec:
        step = self.busybox.snapshots.prepare_step()
        self.steps.append(step)
        base = RunSpec(
            argv=("/bin/sh", "-c", script),
            env=(PATH,),
            cwd="/",
            uid=0,
            gid=0,
            lowerdirs=self.busybox.lowerdirs,
            upperdir=step.upper,
            workdir=step.work,
        )
        return dataclasses.replace(base, **fields)  # type: ignore[arg-type]

    def run(self, script: str, **fields: object) -> Result:
        spec = self.spec(script, **fields)
        out: list[bytes] = []
        code = run(spec, on_output=out.append, rootless=False, snapshotter=self.mode)
        changes = list(overlay_changes(spec.upperdir, lowerdirs=spec.lowerdirs))
        step = self.steps[-1]
        return Result(code, b"".join(out), changes, step)


@pytest.fixture(params=SNAPSHOTTERS)
def sandbox(busybox_lowers: Busybox, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Name: sandbox. Scope: test, once per snapshotter mode (overlay, fuse-overlayfs, copy).
    Depends: busybox_lowers; fuse-overlayfs installed (CI installs it: a missing one fails)."""
    mode = str(request.param)
    if mode == "fuse-overlayfs":
        assert shutil.which(mode), "fuse-overlayfs is not installed (Debian package)"
    yield from _sandbox(busybox_lowers, mode)


@pytest.fixture
def overlay_sandbox(busybox_lowers: Busybox) -> Iterator[Sandbox]:
    """Name: overlay_sandbox. Scope: test. The kernel-overlay mode only, for the tests that
    are about the kernel's overlayfs itself."""
    yield from _sandbox(busybox_lowers, "overlay")


def _sandbox(busybox_lowers: Busybox, mode: str) -> Iterator[Sandbox]:
    box = Sandbox(busybox_lowers, mode)
    yield box
    for step in box.steps:
        busybox_lowers.snapshots.discard(step)


def mountinfo() -> list[str]:
    """The mount points of this mount namespace (the host's, for the test process)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return sorted(line.split()[4] for line in f)
